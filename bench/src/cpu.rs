//! Where the machine's CPU went during a measurement: the kernel's counters (`/proc`) read as
//! it starts and as it ends, by process name. Every PostgreSQL backend is a `postgres`, the bench
//! itself is `partida-bench`. A report that shows the machine saturated, and by whom, says what
//! bounds a rate; one that shows it idle says the bound is elsewhere (a lock, a wait).
//!
//! Linux only: elsewhere there is nothing to read and measurements carry no CPU.

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The machine's CPU over a window, in percent of all its cores (100 = every core busy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    pub busy_percent: f64,
    /// Busiest first; processes under half a percent are left out.
    pub by_process: Vec<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub process: String,
    pub percent: f64,
}

/// The counters at one instant: the machine's busy and total ticks, each process's, and the
/// time since boot in ticks (what a process's start time counts in).
struct Snapshot {
    busy: u64,
    total: u64,
    processes: HashMap<u32, Process>,
    uptime: u64,
}

/// Ticks per second of `/proc`'s counters (`USER_HZ`): 100 on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// One process: its name (a kernel thread's without its `/...` suffix, which changes with its
/// work), when it started (with the pid, who it is) and its threads' CPU ticks. A process that
/// exits before the window ends is not counted: the workloads' processes and connections, and
/// pgbench with its backends, live through their measured time.
#[derive(Debug, Clone, PartialEq)]
struct Process {
    name: String,
    started: u64,
    ticks: u64,
}

/// Reads the CPU over `measure`, from `warmup` after now, on a thread of its own (so neither a
/// workload's loops nor a blocking pgbench run hold it up): join it once the window has passed.
pub fn window(warmup: Duration, measure: Duration) -> JoinHandle<Option<CpuUse>> {
    std::thread::spawn(move || {
        std::thread::sleep(warmup);
        let start = snapshot()?;
        std::thread::sleep(measure);
        Some(use_between(&start, &snapshot()?))
    })
}

fn snapshot() -> Option<Snapshot> {
    let uptime = uptime_ticks(&std::fs::read_to_string("/proc/uptime").ok()?)?;
    let (busy, total) = machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let mut processes = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read: it is simply not counted.
        if let Some(process) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| process(&stat))
        {
            processes.insert(pid, process);
        }
    }
    Some(Snapshot {
        busy,
        total,
        processes,
        uptime,
    })
}

/// `/proc/uptime`'s first number, seconds since boot, in ticks.
fn uptime_ticks(uptime: &str) -> Option<u64> {
    let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some((seconds * TICKS_PER_SECOND) as u64)
}

/// The `cpu` line of `/proc/stat`: busy ticks (all but idle and iowait) and all ticks.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle, total))
}

/// The fields of `/proc/<pid>/stat` after the name (from field 3, the state, on).
fn fields_after_name(stat: &str) -> Option<(&str, Vec<&str>)> {
    // The name is in parentheses and may itself hold spaces or parentheses: it ends at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    Some((
        stat.get(open + 1..close)?,
        stat.get(close + 1..)?.split_whitespace().collect(),
    ))
}

fn number(fields: &[&str], field: usize) -> Option<u64> {
    // `field` as proc(5) numbers them: the state, right after the name, is field 3.
    fields.get(field - 3)?.parse().ok()
}

/// A process from its `/proc/<pid>/stat`: utime and stime are fields 14 and 15, starttime is
/// field 22.
fn process(stat: &str) -> Option<Process> {
    let (name, fields) = fields_after_name(stat)?;
    Some(Process {
        name: name.split('/').next().unwrap_or(name).to_owned(),
        started: number(&fields, 22)?,
        ticks: number(&fields, 14)? + number(&fields, 15)?,
    })
}

fn use_between(start: &Snapshot, end: &Snapshot) -> CpuUse {
    let total = end.total.saturating_sub(start.total);
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    for (pid, process) in &end.processes {
        let before = match start.processes.get(pid) {
            Some(was) if was.started == process.started => was.ticks,
            // Started during the window (a new process may reuse an old one's pid): from zero.
            _ if process.started >= start.uptime => 0,
            // Running before the window but not read at its start: its share is unknown, and
            // counting its whole life would put more in the window than there was.
            _ => continue,
        };
        *by_name.entry(process.name.as_str()).or_default() += process.ticks.saturating_sub(before);
    }
    let mut cpu = CpuUse {
        busy_percent: percent(end.busy.saturating_sub(start.busy), total),
        by_process: Vec::new(),
    };
    for (name, ticks) in by_name {
        cpu.add(name, ticks, total);
    }
    cpu
}

/// `ticks` of one core in percent of `total`, the machine's ticks (every core's), in tenths: a
/// tick is 10 ms of one core, so more digits say nothing.
fn percent(ticks: u64, total: u64) -> f64 {
    (1_000.0 * ticks as f64 / total.max(1) as f64).round() / 10.0
}

impl CpuUse {
    /// Adds a process's `ticks` of `total`, busiest first; under half a percent is left out.
    fn add(&mut self, process: &str, ticks: u64, total: u64) {
        let share = percent(ticks, total);
        if share < 0.5 {
            return;
        }
        let at = self.by_process.partition_point(|s| s.percent >= share);
        self.by_process.insert(
            at,
            Share {
                process: process.to_owned(),
                percent: share,
            },
        );
    }

    /// `91% busy: postgres 48%, command-api 21%, ...`
    pub fn summary(&self) -> String {
        let shares: Vec<String> = self
            .by_process
            .iter()
            .map(|s| format!("{} {:.0}%", s.process, s.percent))
            .collect();
        format!("{:.0}% busy: {}", self.busy_percent, shares.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_read_in_ticks() {
        assert_eq!(uptime_ticks("60819.91 120000.50\n"), Some(6_081_991));
    }

    #[test]
    fn the_machine_line_counts_idle_and_iowait_as_not_busy() {
        let stat = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_ticks(stat), Some((160, 1000)));
    }

    #[test]
    fn a_process_is_read_past_a_name_holding_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) 1) S 1 2 3 4 5 6 7 8 9 10 120 30 7 3 20 0 9 0 5555 0 0";
        let expected = Process {
            name: "tokio (rt) 1".into(),
            started: 5555,
            ticks: 150,
        };
        assert_eq!(process(stat), Some(expected));
        let kernel = "77 (kworker/u8:0-ext4-rsv-conversion) I 2 0 0 0 -1 0 0 0 0 0 9 1 0 0 20 0 1 0 12 0 0";
        assert_eq!(
            process(kernel).map(|p| p.name),
            Some("kworker".into()),
            "its work changes its name"
        );
    }

    fn at(busy: u64, total: u64, processes: &[(u32, &str, u64, u64)]) -> Snapshot {
        Snapshot {
            busy,
            total,
            uptime: total / 2,
            processes: processes
                .iter()
                .map(|&(pid, name, started, ticks)| {
                    (
                        pid,
                        Process {
                            name: name.to_owned(),
                            started,
                            ticks,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn shares_are_of_the_whole_machine_grouped_by_name() {
        let start = at(
            1_000,
            2_000,
            &[
                (1, "postgres", 1, 100),
                (2, "postgres", 1, 50),
                (3, "command-api", 1, 10),
                (6, "psql", 1, 30),
            ],
        );
        // 400 ticks of two cores, from tick 1,000 since boot to 1,200. A backend started in the
        // window (pid 4) counts from zero; pid 3 is now another process, new too; pid 6 exited
        // and is not counted; pid 7 ran before the window but was not read at its start, so its
        // share is unknown and it is left out.
        let end = at(
            1_300,
            2_400,
            &[
                (1, "postgres", 1, 180),
                (2, "postgres", 1, 90),
                (3, "query-api", 1_100, 12),
                (4, "postgres", 1_001, 40),
                (5, "idle", 1, 1),
                (7, "postgres", 2, 5_000),
            ],
        );
        let cpu = use_between(&start, &end);
        assert_eq!(cpu.busy_percent, 75.0);
        let shares: Vec<(&str, f64)> = cpu.by_process.iter().map(|s| (s.process.as_str(), s.percent)).collect();
        assert_eq!(
            shares,
            [("postgres", 40.0), ("query-api", 3.0)],
            "under half a percent is left out"
        );
        assert_eq!(cpu.summary(), "75% busy: postgres 40%, query-api 3%");
    }
}
