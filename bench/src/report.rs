//! The report: `report.json` for tools, `report.md` for people; both list every measurement with
//! its baselines and the targets with whether they were met.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cpu::CpuUse;
use crate::stats::Summary;

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub machine: Machine,
    pub measurements: Vec<Measurement>,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub postgres: String,
}

#[derive(Debug, Serialize)]
pub struct Measurement {
    pub workload: &'static str,
    pub name: String,
    /// What `rate` counts.
    pub unit: &'static str,
    pub result: Summary,
    pub baselines: Vec<Baseline>,
}

#[derive(Debug, Serialize)]
pub struct Baseline {
    pub name: String,
    pub unit: &'static str,
    pub result: Summary,
    /// Our rate divided by the baseline's.
    pub ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub value: Option<f64>,
    pub goal: String,
    pub met: Option<bool>,
}

impl Measurement {
    pub fn new(workload: &'static str, name: impl Into<String>, unit: &'static str, result: Summary) -> Self {
        Self {
            workload,
            name: name.into(),
            unit,
            result,
            baselines: Vec::new(),
        }
    }

    pub fn against(mut self, name: impl Into<String>, unit: &'static str, baseline: Summary) -> Self {
        let ratio = self.result.rate / baseline.rate.max(1e-9);
        self.baselines.push(Baseline {
            name: name.into(),
            unit,
            result: baseline,
            ratio,
        });
        self
    }
}

impl Target {
    /// `value >= goal` is met.
    pub fn at_least(name: impl Into<String>, value: Option<f64>, goal: f64) -> Self {
        Self {
            name: name.into(),
            value,
            goal: format!(">= {goal}"),
            met: value.map(|v| v >= goal),
        }
    }

    /// `value <= goal` is met.
    pub fn at_most(name: impl Into<String>, value: Option<f64>, goal: f64) -> Self {
        Self {
            name: name.into(),
            value,
            goal: format!("<= {goal}"),
            met: value.map(|v| v <= goal),
        }
    }
}

impl Report {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Partida benchmark report ({} mode)\n", self.mode);
        let _ = writeln!(md, "Machine: {} CPUs, {}.\n", self.machine.cpus, self.machine.postgres);
        let _ = writeln!(
            md,
            "| workload | measurement | rate | p50 ms | p95 ms | p99 ms | max ms | errors |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
        for m in &self.measurements {
            row(&mut md, m.workload, &m.name, m.unit, &m.result);
            for b in &m.baselines {
                row(
                    &mut md,
                    "",
                    &format!("↳ baseline: {} (ours ×{:.2})", b.name, b.ratio),
                    b.unit,
                    &b.result,
                );
            }
        }
        cpu_section(&mut md, &self.measurements);
        let _ = writeln!(
            md,
            "\n## Targets\n\n| target | value | goal | met |\n|---|---:|---|---|"
        );
        for t in &self.targets {
            let value = t.value.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2}"));
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(md, "| {} | {value} | {} | {met} |", t.name, t.goal);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        md
    }
}

/// Where the CPU went during each measurement and baseline that recorded it: a saturated machine
/// and its shares say what bounds a rate.
fn cpu_section(md: &mut String, measurements: &[Measurement]) {
    // A window is listed once: a baseline shared by several measurements (one pgbench run), or
    // taken in the same run as its measurement (the hot account's turns), is not repeated.
    let mut rows: Vec<(String, &CpuUse)> = Vec::new();
    for m in measurements {
        let name = format!("{} {}", m.workload, m.name);
        let baselines = m.baselines.iter().map(|b| (format!("↳ {name}: {}", b.name), &b.result));
        for (row, result) in std::iter::once((name.clone(), &m.result)).chain(baselines) {
            if let Some(cpu) = &result.cpu
                && !rows.iter().any(|(_, listed)| *listed == cpu)
            {
                rows.push((row, cpu));
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Where the CPU went\n\nShares of the whole machine (100% = every core busy) over each measured \
         time, by process; every PostgreSQL backend counts as `postgres`. Interrupts, and processes that \
         exited before the end, count in the busy figure only.\n\n| measurement | CPU |\n|---|---|"
    );
    for (name, cpu) in rows {
        let _ = writeln!(md, "| {name} | {} |", cpu.summary());
    }
}

fn row(md: &mut String, workload: &str, name: &str, unit: &str, s: &Summary) {
    let _ = writeln!(
        md,
        "| {workload} | {name} | {:.0} {unit} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        s.rate, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.errors
    );
}
