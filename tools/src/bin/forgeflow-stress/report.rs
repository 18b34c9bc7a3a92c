//! The run's report: JSON for machines (see ARCHITECTURE.md), a table for people,
//! and a progress line on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// Integrity checks made and how many failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Integrity {
    pub checks: u64,
    pub failures: u64,
}

impl Integrity {
    pub fn add(&mut self, other: Integrity) {
        self.checks += other.checks;
        self.failures += other.failures;
    }

    pub fn check(&mut self, ok: bool) {
        self.checks += 1;
        self.failures += (!ok) as u64;
    }
}

/// A target from an issue, shown in the table and the JSON.
#[derive(Debug, Clone)]
pub struct Target {
    pub metric: String,
    pub text: String,
    pub met: bool,
}

/// One scenario's results.
#[derive(Debug, Default)]
pub struct ScenarioReport {
    /// The GPU it ran on, for scenarios that use one.
    pub adapter: Option<Value>,
    pub frames: u64,
    pub metrics: Map<String, Value>,
    pub compare: Map<String, Value>,
    pub ratios: Map<String, Value>,
    pub integrity: Integrity,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// An empty report for a scenario that runs on `gpu`.
    pub fn on_gpu(gpu: &forgeflow::gpu::Gpu) -> Self {
        ScenarioReport {
            adapter: Some(json!({
                "name": gpu.info.name,
                "backend": format!("{:?}", gpu.info.backend),
                "device_type": format!("{:?}", gpu.info.device_type),
                "driver": gpu.info.driver,
            })),
            ..ScenarioReport::default()
        }
    }

    /// A metric; a dotted name (`decode_mpix_per_s.bc7`) nests objects.
    pub fn metric(&mut self, name: &str, v: f64) {
        insert_nested(&mut self.metrics, name, num(v));
    }

    /// A peer's metric on the same work (dotted names nest, as in `metric`).
    pub fn compare(&mut self, peer: &str, name: &str, v: f64) {
        insert_nested(&mut self.compare, &format!("{peer}.{name}"), num(v));
    }

    pub fn ratio(&mut self, name: &str, v: f64) {
        self.ratios.insert(name.into(), num(v));
    }

    pub fn target(&mut self, metric: &str, text: impl Into<String>, met: bool) {
        self.targets.push(Target {
            metric: metric.into(),
            text: text.into(),
            met,
        });
    }
}

/// Inserts `v` at the dotted path `name`, creating objects on the way.
fn insert_nested(map: &mut Map<String, Value>, name: &str, v: Value) {
    match name.split_once('.') {
        None => {
            map.insert(name.into(), v);
        }
        Some((head, rest)) => {
            let entry = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(m) = entry {
                insert_nested(m, rest, v);
            }
        }
    }
}

fn num(v: f64) -> Value {
    // JSON has no NaN or infinity; a metric that could not be measured is null.
    serde_json::Number::from_f64((v * 1e4).round() / 1e4).map_or(Value::Null, Value::Number)
}

/// The whole report of one invocation.
pub struct Report {
    pub scenario: &'static str,
    pub threads: usize,
    pub duration: Duration,
    pub adapter: Option<Value>,
    pub parts: Vec<(&'static str, ScenarioReport)>,
}

impl Report {
    pub fn integrity(&self) -> Integrity {
        let mut total = Integrity::default();
        for (_, p) in &self.parts {
            total.add(p.integrity);
        }
        total
    }

    pub fn to_json(&self) -> Value {
        let integrity = self.integrity();
        let targets = |p: &ScenarioReport| -> Value {
            Value::Object(
                p.targets
                    .iter()
                    .map(|t| (t.metric.clone(), json!({ "target": t.text, "met": t.met })))
                    .collect(),
            )
        };
        let (metrics, compare, ratios, targets, notes, frames) =
            if let [(_, only)] = &self.parts[..] {
                (
                    Value::Object(only.metrics.clone()),
                    Value::Object(only.compare.clone()),
                    Value::Object(only.ratios.clone()),
                    targets(only),
                    json!(only.notes),
                    only.frames,
                )
            } else {
                let each = |f: &dyn Fn(&ScenarioReport) -> Value| -> Value {
                    Value::Object(
                        self.parts
                            .iter()
                            .map(|(n, p)| ((*n).to_owned(), f(p)))
                            .collect(),
                    )
                };
                (
                    each(&|p| Value::Object(p.metrics.clone())),
                    each(&|p| Value::Object(p.compare.clone())),
                    each(&|p| Value::Object(p.ratios.clone())),
                    each(&targets),
                    each(&|p| json!(p.notes)),
                    self.parts.iter().map(|(_, p)| p.frames).sum(),
                )
            };
        json!({
            "scenario": self.scenario,
            "version": env!("CARGO_PKG_VERSION"),
            "adapter": self.adapter.clone().unwrap_or(Value::Null),
            "cpu": { "threads": self.threads },
            "frames": frames,
            "duration_s": num(self.duration.as_secs_f64()),
            "metrics": metrics,
            "compare": compare,
            "ratios": ratios,
            "targets": targets,
            "notes": notes,
            "integrity": { "checks": integrity.checks, "failures": integrity.failures },
        })
    }

    /// The summary table, for people.
    pub fn print_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "forgeflow-stress {} - {} worker threads, {:.1} s",
            self.scenario,
            self.threads,
            self.duration.as_secs_f64()
        )?;
        for (name, p) in &self.parts {
            writeln!(out, "\n[{name}]  {} frames", p.frames)?;
            writeln!(out, "  {:<58} {:>14}", "metric", "value")?;
            let mut flat = Vec::new();
            flatten("", &Value::Object(p.metrics.clone()), &mut flat);
            for (k, v) in &flat {
                writeln!(out, "  {:<58} {:>14}", k, fmt_value(v))?;
            }
            let mut flat = Vec::new();
            flatten("compare", &Value::Object(p.compare.clone()), &mut flat);
            for (k, v) in &flat {
                writeln!(out, "  {:<58} {:>14}", k, fmt_value(v))?;
            }
            for (k, v) in &p.ratios {
                writeln!(out, "  {:<58} {:>14}", format!("ratios.{k}"), fmt_value(v))?;
            }
            if !p.targets.is_empty() {
                writeln!(out, "  targets:")?;
                for t in &p.targets {
                    writeln!(
                        out,
                        "    {:<4} {:<34} {}",
                        if t.met { "ok" } else { "MISS" },
                        t.metric,
                        t.text
                    )?;
                }
            }
            for n in &p.notes {
                writeln!(out, "  note: {n}")?;
            }
            writeln!(
                out,
                "  integrity: {} checks, {} failures",
                p.integrity.checks, p.integrity.failures
            )?;
        }
        Ok(())
    }
}

/// Nested objects become dotted names (`by_piece_size.65536.throughput_mb_per_s`).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{f:.0}")
            } else if f.abs() >= 100.0 {
                format!("{f:.1}")
            } else {
                format!("{f:.4}")
            }
        }
        other => other.to_string(),
    }
}

/// A one-line progress display on stderr, only when it is a terminal.
pub struct Progress {
    enabled: bool,
    last: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            last: Instant::now() - Duration::from_secs(1),
        }
    }

    /// Shows `phase` at `done` of 1.0 (throttled to 10 updates a second).
    pub fn update(&mut self, phase: &str, done: f64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let width = 30;
        let filled = ((done.clamp(0.0, 1.0)) * width as f64) as usize;
        eprint!(
            "\r[{}{}] {:>3.0}% {:<40}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            done * 100.0,
            phase
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if self.enabled {
            eprint!("\r{:<80}\r", "");
            let _ = std::io::stderr().flush();
        }
    }
}
