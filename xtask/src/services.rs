//! The product's services as supervised child processes.
//!
//! Each child gets its own process group: a Ctrl-C in the terminal reaches only xtask, which
//! then stops the children in order (SIGTERM to the group, a grace period for the services'
//! graceful shutdown, SIGKILL for stragglers). Their output is echoed with a name prefix and the
//! last lines are kept, so a service that dies at startup explains itself in xtask's error.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::{http, shutdown};

/// How many lines of a service's output are kept for error messages.
const TAIL_LINES: usize = 30;
/// How long services get to finish their graceful shutdown before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What to run and where it answers `GET /healthz`.
#[derive(Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    pub health_addr: SocketAddr,
}

struct Service {
    spec: ServiceSpec,
    child: Child,
    exit: Option<ExitStatus>,
    output: Arc<Mutex<VecDeque<String>>>,
    echoers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Reaps the child if it has exited; true while it runs.
    fn is_running(&mut self) -> bool {
        if self.exit.is_none() {
            // An error here means there is no such child any more: treat it as gone.
            self.exit = match self.child.try_wait() {
                Ok(status) => status,
                Err(_) => Some(ExitStatus::default()),
            };
        }
        self.exit.is_none()
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH (already gone) is fine: that is what we want.
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }

    /// The last lines it printed, once its pipes are drained (bounded wait: a grandchild could
    /// hold them open).
    fn tail(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && !self.echoers.iter().all(JoinHandle::is_finished) {
            thread::sleep(Duration::from_millis(20));
        }
        let lines = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.is_empty() {
            "    (no output)".to_owned()
        } else {
            lines
                .iter()
                .map(|line| format!("    {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    fn exit_description(&self) -> String {
        self.exit
            .map_or_else(|| "still running".to_owned(), |status| status.to_string())
    }
}

/// Owns the running services; stops them all when dropped, so no error path leaves one behind.
#[derive(Default)]
pub struct Supervisor {
    services: Vec<Service>,
}

impl Supervisor {
    pub fn spawn(&mut self, spec: ServiceSpec) -> Result<()> {
        let service = start(spec)?;
        self.services.push(service);
        Ok(())
    }

    /// The names of the services, in the order they were spawned.
    pub fn names(&self) -> Vec<String> {
        self.services.iter().map(|service| service.spec.name.clone()).collect()
    }

    /// The process id of a service (its process group leader), while it runs.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let index = self.index(name).ok()?;
        let service = &self.services[index];
        service.exit.is_none().then(|| service.child.id())
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.services
            .iter()
            .position(|service| service.spec.name == name)
            .with_context(|| format!("no service named {name}"))
    }

    /// Sends `signal` to one service's process group.
    pub fn signal(&mut self, name: &str, signal: Signal) -> Result<()> {
        let index = self.index(name)?;
        note!("sending {signal} to {name}");
        self.services[index].signal(signal);
        Ok(())
    }

    /// Waits for one service to exit (after a signal) and returns how it ended.
    pub fn wait_for_exit(&mut self, name: &str, timeout: Duration) -> Result<ExitStatus> {
        let index = self.index(name)?;
        let deadline = Instant::now() + timeout;
        let service = &mut self.services[index];
        while service.is_running() {
            if Instant::now() > deadline {
                bail!("{name} did not exit within {} s", timeout.as_secs());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(service.exit.unwrap_or_default())
    }

    /// Starts an exited service again with the same program and environment.
    pub fn respawn(&mut self, name: &str) -> Result<()> {
        let index = self.index(name)?;
        if self.services[index].is_running() {
            bail!("{name} is still running");
        }
        let spec = self.services[index].spec.clone();
        self.services[index] = start(spec)?;
        Ok(())
    }

    /// Waits until every service answers `GET /healthz` with 200, failing early when one exits.
    pub fn wait_until_healthy(&mut self, timeout: Duration) -> Result<()> {
        let all: Vec<usize> = (0..self.services.len()).collect();
        self.wait_healthy(all, "/healthz", timeout)
    }

    /// Waits until the named services answer `path` (`/healthz`, or `/readyz`: connected to
    /// their database) with 200.
    pub fn wait_ready(&mut self, names: &[&str], path: &str, timeout: Duration) -> Result<()> {
        let indices = names.iter().map(|name| self.index(name)).collect::<Result<Vec<_>>>()?;
        self.wait_healthy(indices, path, timeout)
    }

    fn wait_healthy(&mut self, mut pending: Vec<usize>, path: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_problem = vec![String::new(); self.services.len()];
        while !pending.is_empty() {
            if shutdown::requested() {
                bail!("interrupted while waiting for the services to start");
            }
            for &index in &pending {
                let service = &mut self.services[index];
                if !service.is_running() {
                    bail!(
                        "{} exited while starting ({}); its last output:\n{}",
                        service.spec.name,
                        service.exit_description(),
                        service.tail()
                    );
                }
            }
            pending.retain(|&index| {
                let service = &self.services[index];
                match http::get(service.spec.health_addr, path, None, Duration::from_secs(2)) {
                    Ok(response) if response.status == 200 => {
                        note!("{} is ready on {}", service.spec.name, service.spec.health_addr);
                        false
                    }
                    Ok(response) => {
                        last_problem[index] = format!("answered {}", response.status);
                        true
                    }
                    Err(err) => {
                        last_problem[index] = format!("{err:#}");
                        true
                    }
                }
            });
            if !pending.is_empty() && Instant::now() > deadline {
                let report: Vec<String> = pending
                    .iter()
                    .map(|&index| {
                        let service = &self.services[index];
                        format!(
                            "{} never answered GET http://{}{path} with 200 (last: {}); its last output:\n{}",
                            service.spec.name,
                            service.spec.health_addr,
                            last_problem[index],
                            service.tail()
                        )
                    })
                    .collect();
                bail!(
                    "services not ready after {} s:\n{}",
                    timeout.as_secs(),
                    report.join("\n")
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }

    /// Blocks until a stop is requested (Ok) or a service exits on its own (Err).
    pub fn watch(&mut self) -> Result<()> {
        loop {
            if shutdown::requested() {
                return Ok(());
            }
            for service in &mut self.services {
                if !service.is_running() {
                    bail!(
                        "{} exited unexpectedly ({}); its last output:\n{}",
                        service.spec.name,
                        service.exit_description(),
                        service.tail()
                    );
                }
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGTERM to every service's process group, up to [`STOP_GRACE`] for them to exit, then
    /// SIGKILL. Idempotent.
    pub fn stop_all(&mut self) {
        let mut running: Vec<&mut Service> = self
            .services
            .iter_mut()
            .filter_map(|service| service.is_running().then_some(service))
            .collect();
        if running.is_empty() {
            return;
        }
        for service in &running {
            note!("stopping {}", service.spec.name);
            service.signal(Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            running.retain_mut(|service| service.is_running());
            if running.is_empty() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        for service in &mut running {
            note!(
                "{} did not stop within {} s: killing it",
                service.spec.name,
                STOP_GRACE.as_secs()
            );
            service.signal(Signal::SIGKILL);
            service.exit = service.child.wait().ok();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Spawns one service in its own process group, echoing its output.
fn start(spec: ServiceSpec) -> Result<Service> {
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))?;
    let output = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let mut echoers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        echoers.push(echo(spec.name.clone(), stdout, Arc::clone(&output), false));
    }
    if let Some(stderr) = child.stderr.take() {
        echoers.push(echo(spec.name.clone(), stderr, Arc::clone(&output), true));
    }
    Ok(Service {
        spec,
        child,
        exit: None,
        output,
        echoers,
    })
}

/// Echoes a child's output line by line with its name in front, keeping the last lines.
fn echo(
    name: String,
    pipe: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
    to_stderr: bool,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            let echoed = format!("{name:>13} | {line}\n");
            // Keep draining the pipe even when our own output is gone (a closed terminal): a
            // service blocked on a full pipe would look hung.
            let _ = if to_stderr {
                std::io::stderr().write_all(echoed.as_bytes())
            } else {
                std::io::stdout().write_all(echoed.as_bytes())
            };
            let mut lines = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    })
}
