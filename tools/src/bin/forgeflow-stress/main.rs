//! `forgeflow-stress`: runs forgeflow's subsystems under synthetic load, checks
//! their integrity, measures them against peer baselines and reports.
//! See `forgeflow-stress --help` and ARCHITECTURE.md's conventions.

mod all;
mod alloc;
mod cli;
mod graph;
mod pool;
mod priority;
mod report;
mod runqueue;
mod smaps;
mod texture;
mod upload;
mod vt;

use std::process::ExitCode;
use std::time::Instant;

use cli::{Parsed, Scenario};
use report::{Progress, Report};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("forgeflow-stress: {msg}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut progress = Progress::new(opts.quiet);
    let mut parts = Vec::new();
    let scenarios: Vec<Scenario> = match opts.scenario {
        Scenario::Every => vec![
            Scenario::Graph,
            Scenario::Upload,
            Scenario::Pool,
            Scenario::Texture,
            Scenario::Vt,
            Scenario::All,
        ],
        one => vec![one],
    };
    for scenario in scenarios {
        let result = match scenario {
            Scenario::Graph => graph::run(&opts, &mut progress),
            Scenario::Upload => upload::run(&opts, &mut progress),
            Scenario::Pool => pool::run(&opts, &mut progress),
            Scenario::Texture => texture::run(&opts, &mut progress),
            Scenario::Vt => vt::run(&opts, &mut progress),
            Scenario::All => all::run(&opts, &mut progress),
            Scenario::Every => continue,
        };
        match result {
            Ok(part) => parts.push((scenario.name(), part)),
            Err(msg) => {
                progress.finish();
                eprintln!("forgeflow-stress {}: {msg}", scenario.name());
                return ExitCode::from(2);
            }
        }
    }
    progress.finish();
    let report = Report {
        scenario: opts.scenario.name(),
        threads: opts.threads,
        duration: started.elapsed(),
        adapter: parts.iter().find_map(|(_, p)| p.adapter.clone()),
        parts,
    };
    if !opts.quiet {
        let _ = report.print_table(&mut std::io::stdout().lock());
    }
    if let Some(path) = &opts.json {
        let text = match serde_json::to_string_pretty(&report.to_json()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("forgeflow-stress: could not encode the report: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("forgeflow-stress: could not write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let integrity = report.integrity();
    if integrity.failures > 0 {
        eprintln!(
            "forgeflow-stress: {} of {} integrity checks FAILED",
            integrity.failures, integrity.checks
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
