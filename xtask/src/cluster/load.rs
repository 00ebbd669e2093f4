//! Load for the drills: writer and reader threads over xtask's std HTTP client.
//!
//! Writers behave like a careful API client: each transfer has its own id, and a failed attempt
//! (no answer, or a retryable 5xx) is sent again with the same id until it is acknowledged, so
//! every transfer a writer started is acknowledged exactly once by the time it stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::{http, shutdown};

/// The account every drill transfer debits; users are credited.
pub const BANK: &str = "drill:bank";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one transfer may take to be acknowledged, retries included (a primary restart).
const ACK_TIMEOUT: Duration = Duration::from_secs(90);
/// Between attempts of one transfer: a short, fixed back-off.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// An acknowledged transfer.
#[derive(Debug, Clone)]
pub struct Ack {
    pub id: String,
    pub account: String,
    pub position: i64,
    /// Which target answered it (an index into the writers' targets).
    pub target: usize,
}

/// Posts one transfer of 1 from [`BANK`] to `account`, again and again with the same id until
/// it is acknowledged (201, or 200 for a replay of an earlier attempt that was written).
pub fn transfer(target: SocketAddr, token: &str, id: &str, account: &str) -> Result<i64> {
    let body = json!({
        "id": id,
        "postings": [{ "debit": BANK, "credit": account, "amount": 1 }],
    })
    .to_string();
    let deadline = Instant::now() + ACK_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http::post_json(target, "/v1/transfers", &body, token, REQUEST_TIMEOUT) {
            Ok(response) if matches!(response.status, 200 | 201) => {
                let answer: Value = serde_json::from_str(&response.body)?;
                return answer["position"]
                    .as_i64()
                    .ok_or_else(|| anyhow!("no position in {}", response.body));
            }
            Ok(response) if response.status >= 500 || response.status == 429 => {
                last = format!("{} {}", response.status, response.body);
            }
            Ok(response) => bail!("transfer {id} was refused: {} {}", response.status, response.body),
            Err(err) => last = format!("{err:#}"),
        }
        thread::sleep(RETRY_PAUSE);
    }
    bail!(
        "transfer {id} was not acknowledged within {} s (last: {last})",
        ACK_TIMEOUT.as_secs()
    )
}

/// Counts shared by a group of load threads and whoever watches them.
#[derive(Default)]
struct Progress {
    stop: AtomicBool,
    done: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Progress {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || shutdown::requested()
    }
}

/// Waits until `progress` has counted `count` successes; fails early when a thread ended.
fn wait_for<T>(progress: &Progress, handles: &[JoinHandle<T>], count: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while progress.done.load(Ordering::SeqCst) < count {
        if handles.iter().any(JoinHandle::is_finished) {
            bail!("a load thread ended early");
        }
        if shutdown::requested() {
            bail!("interrupted");
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} requests succeeded within {} s (errors: {:?})",
                progress.done.load(Ordering::SeqCst),
                timeout.as_secs(),
                progress.errors.lock().unwrap_or_else(PoisonError::into_inner)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Threads posting transfers until stopped.
pub struct Writers {
    progress: Arc<Progress>,
    handles: Vec<JoinHandle<Result<Vec<Ack>>>>,
}

impl Writers {
    /// `threads` writers per target; ids are `{tag}-{target}-{thread}-{n}`, accounts taken in
    /// turn from `accounts`.
    pub fn start(tag: &str, targets: &[SocketAddr], token: &str, threads: usize, accounts: &[String]) -> Self {
        let progress = Arc::new(Progress::default());
        let mut handles = Vec::new();
        for (target_index, &target) in targets.iter().enumerate() {
            for thread_index in 0..threads {
                let progress = Arc::clone(&progress);
                let prefix = format!("{tag}-{target_index}-{thread_index}");
                let accounts = accounts.to_vec();
                let token = token.to_owned();
                handles.push(thread::spawn(move || {
                    let mut acks = Vec::new();
                    while !progress.stopping() {
                        let n = acks.len();
                        let id = format!("{prefix}-{n}");
                        let account = accounts[(n + thread_index) % accounts.len()].clone();
                        let position = transfer(target, &token, &id, &account)?;
                        acks.push(Ack {
                            id,
                            account,
                            position,
                            target: target_index,
                        });
                        progress.done.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(acks)
                }));
            }
        }
        Self { progress, handles }
    }

    pub fn acknowledged(&self) -> usize {
        self.progress.done.load(Ordering::SeqCst)
    }

    /// Waits until `count` transfers in all were acknowledged.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Result<()> {
        wait_for(&self.progress, &self.handles, count, timeout)
    }

    /// Stops the writers (each finishes the transfer it is on) and returns every ack.
    pub fn stop(self) -> Result<Vec<Ack>> {
        self.progress.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for handle in self.handles {
            let acks = handle.join().map_err(|_| anyhow!("a writer thread panicked"))??;
            all.extend(acks);
        }
        Ok(all)
    }
}

/// What a group of readers saw.
#[derive(Debug)]
pub struct Reads {
    pub ok: usize,
    pub failed: usize,
    /// The first few failures, for the report.
    pub errors: Vec<String>,
}

/// Threads reading `paths` in turn through one address until stopped.
pub struct Readers {
    progress: Arc<Progress>,
    handles: Vec<JoinHandle<()>>,
}

impl Readers {
    pub fn start(target: SocketAddr, token: &str, threads: usize, paths: &[String]) -> Self {
        let progress = Arc::new(Progress::default());
        let handles = (0..threads)
            .map(|thread_index| {
                let progress = Arc::clone(&progress);
                let paths = paths.to_vec();
                let token = token.to_owned();
                thread::spawn(move || {
                    let mut n = thread_index;
                    while !progress.stopping() {
                        let path = &paths[n % paths.len()];
                        n += 1;
                        match http::get(target, path, Some(&token), REQUEST_TIMEOUT) {
                            Ok(response) if response.status == 200 => {
                                progress.done.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            Ok(response) => {
                                record(&progress, format!("GET {path}: {} {}", response.status, response.body))
                            }
                            Err(err) => record(&progress, format!("GET {path}: {err:#}")),
                        }
                    }
                })
            })
            .collect();
        Self { progress, handles }
    }

    pub fn succeeded(&self) -> usize {
        self.progress.done.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> usize {
        self.progress.failed.load(Ordering::SeqCst)
    }

    pub fn wait_for(&self, count: usize, timeout: Duration) -> Result<()> {
        wait_for(&self.progress, &self.handles, count, timeout)
    }

    pub fn stop(self) -> Result<Reads> {
        self.progress.stop.store(true, Ordering::SeqCst);
        for handle in self.handles {
            handle.join().map_err(|_| anyhow!("a reader thread panicked"))?;
        }
        let errors = std::mem::take(&mut *self.progress.errors.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(Reads {
            ok: self.progress.done.load(Ordering::SeqCst),
            failed: self.progress.failed.load(Ordering::SeqCst),
            errors,
        })
    }
}

fn record(progress: &Progress, error: String) {
    progress.failed.fetch_add(1, Ordering::SeqCst);
    let mut errors = progress.errors.lock().unwrap_or_else(PoisonError::into_inner);
    if errors.len() < 5 {
        errors.push(error);
    }
}

/// The body of a 200 answer as JSON, or an error naming the request.
pub fn json_ok(response: http::Response, what: &str) -> Result<Value> {
    if response.status != 200 {
        bail!("{what} answered {}: {}", response.status, response.body);
    }
    serde_json::from_str(&response.body).with_context(|| format!("{what}: not JSON: {}", response.body))
}
