//! A progress line on stderr for long runs: events verified, rate, and the share done when the
//! end is known. Quiet when stderr is not a terminal or when asked.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    enabled: bool,
    total: Option<i64>,
    started: Instant,
    shown: Instant,
    position: i64,
}

impl Progress {
    pub fn new(enabled: bool, total: Option<i64>) -> Self {
        let now = Instant::now();
        Self {
            enabled: enabled && std::io::stderr().is_terminal(),
            total,
            started: now,
            shown: now,
            position: 0,
        }
    }

    pub fn advance(&mut self, position: i64) {
        self.position = position;
        if self.enabled && self.shown.elapsed() >= EVERY {
            self.shown = Instant::now();
            self.draw();
        }
    }

    pub fn finish(&mut self) {
        if self.enabled {
            self.draw();
            eprintln!();
        }
    }

    fn draw(&self) {
        let rate = self.position as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let line = match self.total.filter(|t| *t > 0) {
            Some(total) => {
                let share = (self.position as f64 / total as f64).clamp(0.0, 1.0);
                let filled = (share * 30.0) as usize;
                format!(
                    "[{}{}] {:>5.1}% {}/{} events, {:.0}/s",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    share * 100.0,
                    self.position,
                    total,
                    rate
                )
            }
            None => format!("{} events, {:.0}/s", self.position, rate),
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}");
        let _ = stderr.flush();
    }
}
