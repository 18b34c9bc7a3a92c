//! Command line: `forgeflow-stress [SCENARIO] [options]`.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: forgeflow-stress [SCENARIO] [options]

scenarios:
  graph      the job-graph scheduler: overhead, speedup, wide/deep/random DAGs,
             fence back-pressure, failures (CPU only)
  upload     100 MiB per frame to the GPU through the staging ring (needs a GPU);
             --compare adds Queue::write_buffer, StagingBelt and memcpy
  pool       the pool allocator under a simulated churn (--simulate-hours H,
             default 0.1); --compare adds offset-allocator on the same trace
  texture    CPU decode rates per format, the job graph's speedup on a batch of
             decodes, a 4096x4096 BC7 mip chain to the GPU natively and through
             the CPU fallback (needs a GPU); --compare adds texture2ddecoder and
             bcdec_rs on the same blocks
  vt         a scripted flythrough over a procedural terrain streamed as a virtual
             texture (--size, --budget-mb, --resolution), with a feedback pass, a few
             PNG frames (--png-dir); --compare adds a naive policy on the same path
  all        every subsystem in one frame loop through the Runtime facade, as a
             renderer drives it: texture loads (the corpus and generated PNGs),
             pool churn with defrag, upload traffic, a virtual-texture
             flythrough, readback checks throughout (needs a GPU; the default;
             --duration 1h for a soak)
  every      each scenario above in turn, then all

options:
  --frames N       frames of the main measurement (default 2000; other phases scale with it)
  --duration D     keep running the integrity phases until D has passed (30s, 5m, 1h)
  --warmup D       all, with --duration: warm-up before growth is measured (default a
                   tenth of the duration, at least a minute)
  --seed S         seed of the generated graphs (default 1)
  --threads N      worker threads (default: one per core)
  --json PATH      write the report as JSON to PATH
  --simulate-hours H  simulated hours of the pool churn (1 hour = 216,000 frames)
  --size N         vt: virtual texture side in texels (default 16384)
  --budget-mb M    vt: GPU memory budget in MiB (default 256)
  --resolution WxH vt: frame size (default 1920x1080)
  --png-dir DIR    vt: where the PNG frames go (default: the temporary directory)
  --gpu-scatter W  upload: small pieces scattered by a compute dispatch: auto (on
                   hardware GPUs, the default), always, never
  --drop-every N   all: drop every Nth frame's encoder unsubmitted, as a renderer
                   skipping a frame does (the runtime must redo its work)
  --render-normal  all: leave the render thread and the workers in the normal
                   scheduling class (by default they run real-time, SCHED_FIFO 1,
                   where allowed)
  --compare        also run the peer baselines on the same work
  --quiet          no progress bar and no summary table
  -h, --help       this text

exit status: 0 all integrity checks passed, 1 an integrity check failed,
             2 bad arguments or no usable GPU";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Graph,
    Upload,
    Pool,
    Texture,
    Vt,
    All,
    Every,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Graph => "graph",
            Scenario::Upload => "upload",
            Scenario::Pool => "pool",
            Scenario::Texture => "texture",
            Scenario::Vt => "vt",
            Scenario::All => "all",
            Scenario::Every => "every",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    pub frames: u64,
    pub duration: Option<Duration>,
    /// `all`: the warm-up before memory growth is measured (with `duration`).
    pub warmup: Option<Duration>,
    pub seed: u64,
    pub threads: usize,
    pub json: Option<PathBuf>,
    pub compare: bool,
    pub quiet: bool,
    pub simulate_hours: f64,
    pub vt_size: u32,
    pub budget_mb: u64,
    pub resolution: (u32, u32),
    pub png_dir: Option<PathBuf>,
    pub render_fifo: bool,
    /// `upload`: the staging ring's GPU scatter setting.
    pub gpu_scatter: forgeflow::staging::GpuScatter,
    /// `all`: drop every Nth frame's encoder unsubmitted.
    pub drop_every: Option<u64>,
}

/// What parsing produced: options to run, or text to print and leave.
pub enum Parsed {
    Run(Options),
    Help,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut opts = Options {
        scenario: Scenario::All,
        frames: 2000,
        duration: None,
        warmup: None,
        seed: 1,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        json: None,
        compare: false,
        quiet: false,
        simulate_hours: 0.1,
        vt_size: 16384,
        budget_mb: 256,
        resolution: (1920, 1080),
        png_dir: None,
        render_fifo: true,
        gpu_scatter: forgeflow::staging::GpuScatter::Auto,
        drop_every: None,
    };
    let mut scenario_seen = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--frames" => opts.frames = positive(&value("--frames")?, "--frames")?,
            "--duration" => opts.duration = Some(parse_duration(&value("--duration")?)?),
            "--warmup" => opts.warmup = Some(parse_duration(&value("--warmup")?)?),
            "--seed" => {
                let v = value("--seed")?;
                opts.seed = v
                    .parse()
                    .map_err(|_| format!("--seed {v:?} is not a whole number"))?
            }
            "--threads" => opts.threads = positive(&value("--threads")?, "--threads")? as usize,
            "--json" => opts.json = Some(PathBuf::from(value("--json")?)),
            "--compare" => opts.compare = true,
            "--simulate-hours" => {
                let v = value("--simulate-hours")?;
                opts.simulate_hours = match v.parse::<f64>() {
                    Ok(h) if h > 0.0 && h.is_finite() => h,
                    _ => return Err(format!("--simulate-hours {v:?} must be a positive number")),
                };
            }
            "--quiet" => opts.quiet = true,
            "--size" => opts.vt_size = positive(&value("--size")?, "--size")? as u32,
            "--budget-mb" => opts.budget_mb = positive(&value("--budget-mb")?, "--budget-mb")?,
            "--png-dir" => opts.png_dir = Some(PathBuf::from(value("--png-dir")?)),
            "--render-normal" => opts.render_fifo = false,
            "--gpu-scatter" => {
                use forgeflow::staging::GpuScatter;
                let v = value("--gpu-scatter")?;
                opts.gpu_scatter = match v.as_str() {
                    "auto" => GpuScatter::Auto,
                    "always" => GpuScatter::Always,
                    "never" => GpuScatter::Never,
                    _ => return Err(format!("--gpu-scatter {v:?}: auto, always or never")),
                };
            }
            "--drop-every" => {
                opts.drop_every = Some(positive(&value("--drop-every")?, "--drop-every")?)
            }
            "--resolution" => {
                let v = value("--resolution")?;
                opts.resolution = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .filter(|&(w, h): &(u32, u32)| w >= 16 && h >= 16)
                    .ok_or_else(|| format!("--resolution {v:?} is not WxH (16 at least each)"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s:?} (see --help)")),
            s if !scenario_seen => {
                scenario_seen = true;
                opts.scenario = match s {
                    "graph" => Scenario::Graph,
                    "upload" => Scenario::Upload,
                    "pool" => Scenario::Pool,
                    "texture" => Scenario::Texture,
                    "all" => Scenario::All,
                    "every" => Scenario::Every,
                    "vt" => Scenario::Vt,
                    _ => {
                        return Err(format!(
                        "unknown scenario {s:?}; available: graph, upload, pool, texture, vt, all, every"
                    ))
                    }
                };
            }
            s => return Err(format!("unexpected argument {s:?} (one scenario at most)")),
        }
    }
    match (opts.warmup, opts.duration) {
        (Some(_), None) => return Err("--warmup needs --duration".into()),
        (Some(w), Some(d)) if w >= d => {
            return Err(format!(
                "--warmup {w:?} leaves nothing of --duration {d:?} to measure"
            ))
        }
        _ => {}
    }
    Ok(Parsed::Run(opts))
}

fn positive(v: &str, name: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} {v:?} must be a whole number above 0")),
    }
}

/// `500ms`, `30s`, `5m`, `2h`, or plain seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("--duration {v:?}: use a number with ms, s, m or h (e.g. 30s)");
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(bad());
    }
    // A number of seconds a Duration cannot hold (1e20 s) is refused, not
    // a panic in `from_secs_f64`.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("--duration {v:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(o) => Ok(o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_the_conventions() {
        let o = run(&[
            "graph",
            "--frames",
            "10",
            "--seed",
            "7",
            "--threads",
            "3",
            "--json",
            "r.json",
            "--compare",
            "--quiet",
            "--duration",
            "1.5m",
        ])
        .unwrap();
        assert_eq!(o.scenario, Scenario::Graph);
        assert_eq!((o.frames, o.seed, o.threads), (10, 7, 3));
        assert!(o.compare && o.quiet);
        assert_eq!(o.duration, Some(Duration::from_secs(90)));
        assert_eq!(run(&[]).unwrap().scenario, Scenario::All);
    }

    #[test]
    fn a_warmup_needs_a_longer_duration() {
        let o = run(&["--duration", "80m", "--warmup", "20m"]).unwrap();
        assert_eq!(o.warmup, Some(Duration::from_secs(1200)));
        assert!(run(&["--warmup", "20m"]).is_err());
        assert!(run(&["--duration", "10m", "--warmup", "10m"]).is_err());
    }

    #[test]
    fn rejects_bad_arguments_with_a_reason() {
        assert!(run(&["--frames", "0"]).unwrap_err().contains("above 0"));
        assert!(run(&["--frames"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--bogus"]).unwrap_err().contains("unknown option"));
        assert!(run(&["nope"]).unwrap_err().contains("unknown scenario"));
        assert_eq!(run(&["vt"]).unwrap().scenario, Scenario::Vt);
        assert!(run(&["vt", "--resolution", "12x7"]).is_err());
        assert_eq!(
            run(&["vt", "--resolution", "640x360"]).unwrap().resolution,
            (640, 360)
        );
        assert_eq!(
            run(&["pool", "--simulate-hours", "2"])
                .unwrap()
                .simulate_hours,
            2.0
        );
        assert!(run(&["--simulate-hours", "-1"]).is_err());
        assert_eq!(run(&["upload"]).unwrap().scenario, Scenario::Upload);
        assert_eq!(run(&["every"]).unwrap().scenario, Scenario::Every);
        assert!(run(&["graph", "all"]).unwrap_err().contains("one scenario"));
        assert!(run(&["--duration", "5 parsecs"]).is_err());
        assert!(run(&[]).unwrap().render_fifo);
        assert!(!run(&["--render-normal"]).unwrap().render_fifo);
        assert_eq!(run(&["--drop-every", "7"]).unwrap().drop_every, Some(7));
        assert!(
            parse_duration("1e20").is_err(),
            "no panic on a duration too long"
        );
        assert!(parse_duration("100000000000000000000s").is_err());
        assert!(run(&["--drop-every", "0"]).is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    }
}
