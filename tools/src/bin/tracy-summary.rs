//! A headless look at a Tracy session: connects to a program built with
//! `--features tracy` as a Tracy 0.14 profiler would (protocol 82), reads
//! for a while, and prints what arrived by name (zones, GPU zones, frame
//! marks, plots). For machines without the Tracy profiler; the protocol side
//! is `forgeflow_test_support::tracy_capture`, which `tests/tracy.rs` also uses.
//!
//! ```text
//! cargo run --release --features tracy --bin forgeflow-stress -- all --duration 60s &
//! cargo run --release --bin tracy-summary -- --seconds 10
//! ```
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:8086), `--seconds S`
//! (default 5), `--json` (the summary as JSON instead of text). Exits 1 when
//! no client answers or the stream cannot be read.

use std::time::Duration;

fn main() {
    let mut addr = "127.0.0.1:8086".to_string();
    let mut seconds = 5.0f64;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .unwrap_or_else(|| usage("--addr needs HOST:PORT"))
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s: &f64| *s > 0.0)
                    .unwrap_or_else(|| usage("--seconds needs a positive number"))
            }
            "--json" => json = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let capture = match forgeflow_test_support::tracy_capture::Capture::connect(
        &addr,
        Duration::from_secs(10),
    ) {
        Ok(c) => c,
        Err(e) => fail(&format!("no Tracy client answered on {addr}: {e}")),
    };
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let s = match capture.finish() {
        Ok(s) => s,
        Err(e) => fail(&format!("reading the stream from {addr}: {e}")),
    };
    if json {
        let map = |m: &std::collections::BTreeMap<String, u64>| {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), (*v).into())).collect())
        };
        let v = serde_json::json!({
            "program": s.program,
            "seconds": seconds,
            "frame_marks": s.frame_marks,
            "named_frame_marks": map(&s.named_frame_marks),
            "zones": map(&s.zones),
            "gpu_zones": map(&s.gpu_zones),
            "gpu_contexts": s.gpu_contexts,
            "gpu_times": s.gpu_times,
            "plots": map(&s.plots),
            "unanswered_queries": s.unanswered,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return;
    }
    println!(
        "{} over {seconds} s: {} frame marks",
        s.program, s.frame_marks
    );
    let list = |title: &str, m: &std::collections::BTreeMap<String, u64>| {
        println!("{title}:");
        for (name, n) in m {
            println!("  {n:>9}  {name}");
        }
    };
    list("named frame marks", &s.named_frame_marks);
    list("zones", &s.zones);
    list("GPU zones", &s.gpu_zones);
    println!(
        "GPU contexts {}, GPU timestamps {}",
        s.gpu_contexts, s.gpu_times
    );
    list("plot values", &s.plots);
    if s.unanswered > 0 {
        println!("{} name queries unanswered", s.unanswered);
    }
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("tracy-summary: {why}");
    }
    eprintln!("usage: tracy-summary [--addr HOST:PORT] [--seconds S] [--json]");
    std::process::exit(2)
}

fn fail(why: &str) -> ! {
    eprintln!("tracy-summary: {why}");
    std::process::exit(1)
}
