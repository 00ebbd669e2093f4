//! Fault drills on the running topology: what an SRE would try before trusting it.
//!
//! Each drill states what must hold, breaks something (a replica, the leading projector, the
//! primary), and checks it with the product's own reads and, at the end, an independent
//! `partida-audit verify` of the primary and of a cluster restored from the WAL archive.
//! Progress waits on conditions (acknowledged writes, answered reads, a role change), never on
//! sleeps.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use serde_json::json;

use super::load::{self, Ack, BANK, Readers, Writers};
use super::{DATABASE, Topology};
use crate::{http, shutdown};

/// Users the drills credit.
const USERS: usize = 8;
const READERS: usize = 4;
const WAIT: Duration = Duration::from_secs(60);

/// What the drills have had acknowledged so far: each user's credits.
#[derive(Default)]
struct Ledger {
    credits: HashMap<String, i64>,
    head: i64,
}

impl Ledger {
    fn record(&mut self, acks: &[Ack]) {
        for ack in acks {
            *self.credits.entry(ack.account.clone()).or_default() += 1;
            self.head = self.head.max(ack.position);
        }
    }
}

pub(super) fn users() -> Vec<String> {
    (0..USERS).map(|i| format!("drill:user:{i}")).collect()
}

pub fn run(mut topology: Topology) -> Result<()> {
    let started = Instant::now();
    let mut ledger = Ledger::default();
    open_accounts(&topology)?;
    let drills: [(&str, Drill); 9] = [
        ("reads through nginx see each write on every replica", read_your_writes),
        ("a query-api stopped (SIGTERM) under load fails no read", |t, l| {
            replica_stops(t, l, Signal::SIGTERM)
        }),
        (
            "a query-api killed (SIGKILL) under load fails at most its in-flight reads",
            |t, l| replica_stops(t, l, Signal::SIGKILL),
        ),
        (
            "the leading projector killed: the standby takes over",
            projector_failover,
        ),
        (
            "the primary crashed and restarted: every service resumes",
            primary_crash,
        ),
        ("two command-apis writing at once", two_writers),
        (
            "a command-api killed (SIGKILL) mid-batch: nothing half-written",
            command_api_killed,
        ),
        ("the books verify (partida-audit)", books_verify),
        ("restore drill: base backup + WAL archive", restore_drill),
    ];
    for (name, drill) in drills {
        if shutdown::requested() {
            bail!("interrupted");
        }
        let drill_started = Instant::now();
        note!("drill: {name}");
        let detail = drill(&mut topology, &mut ledger).with_context(|| format!("drill failed: {name}"))?;
        note!(
            "drill passed in {:.1} s: {name}: {detail}",
            drill_started.elapsed().as_secs_f64()
        );
    }
    note!("all drills passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A drill: breaks something, checks what must hold, returns a one-line account of what it saw.
type Drill = fn(&mut Topology, &mut Ledger) -> Result<String>;

pub(super) fn open_accounts(topology: &Topology) -> Result<()> {
    let mut calls = vec![("/v1/assets", json!({ "code": "EUR", "scale": 2 }))];
    calls.push((
        "/v1/accounts",
        json!({ "id": BANK, "asset": "EUR", "name": "Drill bank", "normal_side": "debit" }),
    ));
    for user in users() {
        calls.push((
            "/v1/accounts",
            json!({ "id": user, "asset": "EUR", "name": user, "normal_side": "credit" }),
        ));
    }
    for (path, body) in calls {
        let response = http::post_json(
            topology.command_lb,
            path,
            &body.to_string(),
            &topology.token,
            Duration::from_secs(30),
        )?;
        if !matches!(response.status, 200 | 201) {
            bail!("POST {path} {body} answered {}: {}", response.status, response.body);
        }
    }
    Ok(())
}

/// Each user's credits as query-api reports them after `position`, against the ledger.
fn check_balances(topology: &Topology, ledger: &Ledger) -> Result<()> {
    for user in users() {
        let path = format!("/v1/accounts/{user}?min_position={}", ledger.head);
        let account = load::json_ok(topology.read(&path)?, &path)?;
        let expected = ledger.credits.get(&user).copied().unwrap_or_default();
        if account["credits"].as_i64() != Some(expected) {
            bail!(
                "{user}: query-api reports credits {} after position {}, but {expected} transfers to it were acknowledged",
                account["credits"],
                ledger.head
            );
        }
    }
    Ok(())
}

/// Read-your-writes through the balancer: each write, then three reads with its position as
/// `min_position` (round-robin, so every replica of the standby answers some), each exact.
fn read_your_writes(topology: &mut Topology, ledger: &mut Ledger) -> Result<String> {
    let users = users();
    let mut reads = 0;
    for i in 0..30 {
        let account = &users[i % 4];
        let id = format!("ryw-{i}");
        let position = load::transfer(topology.command_lb, &topology.token, &id, account)?;
        ledger.record(&[Ack {
            id,
            account: account.clone(),
            position,
            target: 0,
        }]);
        let expected = ledger.credits[account];
        for _ in 0..super::QUERY_APIS {
            let path = format!("/v1/accounts/{account}?min_position={position}");
            let seen = load::json_ok(topology.read(&path)?, &path)?;
            if seen["credits"].as_i64() != Some(expected) {
                bail!(
                    "GET {path} showed credits {} where {expected} were written before position {position}",
                    seen["credits"]
                );
            }
            reads += 1;
        }
    }
    Ok(format!("30 writes, {reads} reads at their positions, all exact"))
}

/// Readers hammer the balancer while one query-api replica gets `signal`. SIGTERM (a rolling
/// update) must cost no read; SIGKILL at most the reads it had in flight.
fn replica_stops(topology: &mut Topology, _ledger: &mut Ledger, signal: Signal) -> Result<String> {
    let victim = "query-api-2";
    let paths: Vec<String> = vec![
        format!("/v1/accounts/{}", users()[0]),
        "/v1/transfers?limit=20".into(),
        format!("/v1/accounts/{}/entries?limit=20", users()[1]),
        "/v1/trial-balance".into(),
    ];
    let readers = Readers::start(topology.query_lb, &topology.token, READERS, &paths);
    readers.wait_for(200, WAIT)?;
    topology.supervisor.signal(victim, signal)?;
    let status = topology.supervisor.wait_for_exit(victim, Duration::from_secs(15))?;
    let after = readers.succeeded();
    readers.wait_for(after + 400, WAIT)?;
    let reads = readers.stop()?;
    topology.supervisor.respawn(victim)?;
    topology.supervisor.wait_ready(&[victim], "/readyz", WAIT)?;
    let allowed = if signal == Signal::SIGTERM { 0 } else { READERS };
    if reads.failed > allowed {
        bail!(
            "{} of {} reads failed around the {signal} of {victim} ({status}), at most {allowed} allowed: {:?}",
            reads.failed,
            reads.ok + reads.failed,
            reads.errors
        );
    }
    Ok(format!(
        "{} reads, {} failed (at most {allowed} allowed); {victim} exited with {status} and came back",
        reads.ok + reads.failed,
        reads.failed
    ))
}

/// The projector whose /readyz says it leads.
fn leading_projector(topology: &Topology) -> Result<Option<usize>> {
    let mut leaders = Vec::new();
    for (i, addr) in topology.projectors.iter().enumerate() {
        if let Ok(response) = http::get(*addr, "/readyz", None, Duration::from_secs(2))
            && response.body.contains("\"leader\"")
        {
            leaders.push(i);
        }
    }
    match leaders.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => bail!("projectors {many:?} all claim to lead"),
    }
}

/// Writes go on while the leading projector is SIGKILLed; the standby must take the lock and
/// the read tables must end up exactly as acknowledged: nothing lost, nothing applied twice.
fn projector_failover(topology: &mut Topology, ledger: &mut Ledger) -> Result<String> {
    let Some(leader) = leading_projector(topology)? else {
        bail!("no projector leads");
    };
    let victim = format!("projector-{}", leader + 1);
    let writers = Writers::start("failover", &[topology.command_lb], &topology.token, 2, &users());
    writers.wait_for(50, WAIT)?;
    topology.supervisor.signal(&victim, Signal::SIGKILL)?;
    topology.supervisor.wait_for_exit(&victim, Duration::from_secs(15))?;
    let deadline = Instant::now() + WAIT;
    let successor = loop {
        if let Some(successor) = leading_projector(topology)? {
            break successor;
        }
        if Instant::now() > deadline {
            bail!(
                "no projector took the lead within {} s of {victim}'s death",
                WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let at_takeover = writers.acknowledged();
    writers.wait_for(at_takeover + 50, WAIT)?;
    let acks = writers.stop()?;
    ledger.record(&acks);
    check_balances(topology, ledger)?;
    topology.supervisor.respawn(&victim)?;
    topology.supervisor.wait_ready(&[&victim], "/healthz", WAIT)?;
    Ok(format!(
        "{} transfers; projector-{} took over; every balance exact",
        acks.len(),
        successor + 1
    ))
}

/// The primary crashes (`pg_ctl stop -m immediate`) under writes and starts again. Every service
/// must reconnect without a restart, and every acknowledged transfer must be in the log exactly
/// once (clients retried with the same ids).
fn primary_crash(topology: &mut Topology, ledger: &mut Ledger) -> Result<String> {
    let writers = Writers::start("crash", &[topology.command_lb], &topology.token, 3, &users());
    writers.wait_for(50, WAIT)?;
    topology.db.crash_and_restart_primary()?;
    let restarted_at = writers.acknowledged();
    writers.wait_for(restarted_at + 50, Duration::from_secs(90))?;
    let acks = writers.stop()?;
    each_logged_once(topology, "crash", &acks)?;
    // `/readyz` answers 200 only once the service is connected to its database again.
    let names = topology.supervisor.names();
    let names: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| {
            ["command-api", "projector", "query-api"]
                .iter()
                .any(|kind| name.starts_with(kind))
        })
        .collect();
    topology.supervisor.wait_ready(&names, "/readyz", WAIT)?;
    ledger.record(&acks);
    check_balances(topology, ledger)?;
    Ok(format!(
        "{} transfers acknowledged ({restarted_at} before the restart), each logged once; all {} services ready again",
        acks.len(),
        names.len()
    ))
}

/// The transfers with ids `{tag}-...` in the log are exactly the acknowledged ones: none lost,
/// none twice, none that no client saw acknowledged.
fn each_logged_once(topology: &Topology, tag: &str, acks: &[Ack]) -> Result<()> {
    let acknowledged: HashSet<String> = acks.iter().map(|ack| format!("transfer:{}", ack.id)).collect();
    let logged = topology.db.primary_sql(
        DATABASE,
        &format!("SELECT stream_id FROM events WHERE stream_id LIKE 'transfer:{tag}-%'"),
    )?;
    let logged: Vec<&str> = logged.lines().collect();
    let distinct: HashSet<&str> = logged.iter().copied().collect();
    if logged.len() != distinct.len() {
        bail!("{} transfers are logged more than once", logged.len() - distinct.len());
    }
    let lost = acknowledged.iter().filter(|id| !distinct.contains(id.as_str())).count();
    let unseen = distinct.iter().filter(|id| !acknowledged.contains(**id)).count();
    if lost > 0 || unseen > 0 {
        bail!(
            "{} transfers acknowledged, {} logged: {lost} acknowledged but not logged, {unseen} logged but never acknowledged",
            acknowledged.len(),
            distinct.len()
        );
    }
    Ok(())
}

/// Both command-apis, addressed directly, write to the same accounts at once; the positions
/// they hand out are distinct and the log stays dense.
fn two_writers(topology: &mut Topology, ledger: &mut Ledger) -> Result<String> {
    let targets = topology.command_apis.clone();
    let writers = Writers::start("pair", &targets, &topology.token, 3, &users()[..2]);
    writers.wait_for(300, WAIT)?;
    let acks = writers.stop()?;
    let positions: HashSet<i64> = acks.iter().map(|ack| ack.position).collect();
    if positions.len() != acks.len() {
        bail!(
            "{} transfers were acknowledged at only {} positions",
            acks.len(),
            positions.len()
        );
    }
    for target in 0..targets.len() {
        if !acks.iter().any(|ack| ack.target == target) {
            bail!("command-api-{} acknowledged no transfer", target + 1);
        }
    }
    let dense = topology.db.primary_sql(
        DATABASE,
        "SELECT count(*) = max(position) AND min(position) = 1 FROM events",
    )?;
    if dense != "t" {
        bail!("the log's positions are not dense from 1");
    }
    ledger.record(&acks);
    check_balances(topology, ledger)?;
    Ok(format!(
        "{} transfers through 2 instances, distinct positions, a dense log",
        acks.len()
    ))
}

/// Four writers through nginx while command-api-1 is SIGKILLed in the middle of its batches:
/// the requests it held get a 502 from nginx, and their clients retry them with the same ids
/// (nginx sends them to command-api-2). Every acknowledged transfer must then be in the log
/// exactly once and nothing else: a batch is one transaction, so the one it died in left no trace.
fn command_api_killed(topology: &mut Topology, ledger: &mut Ledger) -> Result<String> {
    let victim = "command-api-1";
    let writers = Writers::start("killed", &[topology.command_lb], &topology.token, 4, &users());
    writers.wait_for(100, WAIT)?;
    topology.supervisor.signal(victim, Signal::SIGKILL)?;
    topology.supervisor.wait_for_exit(victim, Duration::from_secs(15))?;
    let at_kill = writers.acknowledged();
    writers.wait_for(at_kill + 100, WAIT)?;
    let acks = writers.stop()?;
    each_logged_once(topology, "killed", &acks)?;
    topology.supervisor.respawn(victim)?;
    topology.supervisor.wait_ready(&[victim], "/readyz", WAIT)?;
    ledger.record(&acks);
    check_balances(topology, ledger)?;
    Ok(format!(
        "{} transfers acknowledged ({at_kill} before the kill), each logged once; {victim} came back",
        acks.len()
    ))
}

/// The books verify: [`sign_and_verify`].
fn books_verify(topology: &mut Topology, _ledger: &mut Ledger) -> Result<String> {
    sign_and_verify(topology)
}

/// Signs a checkpoint (the standby must have replayed it), waits until the read tables have
/// caught up with the head, then runs `partida-audit verify` on the primary, against the
/// published keys and the read tables behind nginx.
pub(super) fn sign_and_verify(topology: &Topology) -> Result<String> {
    let response = http::post_json(
        topology.command_lb,
        "/v1/audit/checkpoints",
        "",
        &topology.token,
        Duration::from_secs(30),
    )?;
    if !matches!(response.status, 200 | 201) {
        bail!("signing a checkpoint answered {}: {}", response.status, response.body);
    }
    let head = topology.db.primary_sql(DATABASE, "SELECT position FROM event_head")?;
    load::json_ok(
        topology.read(&format!("/v1/projections?min_position={head}"))?,
        "GET /v1/projections",
    )?;
    let report = verify(
        topology,
        &topology.db.primary_url(DATABASE),
        Some(&format!("http://{}", topology.query_lb)),
    )?;
    Ok(format!("head {head}: {report}"))
}

/// A base backup taken when the cluster was created, plus every archived WAL segment, restored
/// into a new cluster: it must hold the whole log and pass `partida-audit verify`.
fn restore_drill(topology: &mut Topology, _ledger: &mut Ledger) -> Result<String> {
    let head = topology.db.primary_sql(DATABASE, "SELECT position FROM event_head")?;
    let restored = topology.db.restore()?;
    let restored_head = restored.sql(DATABASE, "SELECT position FROM event_head")?;
    if restored_head != head {
        bail!("the primary's head is {head}, the restored cluster's {restored_head}");
    }
    let report = verify(topology, &restored.url(DATABASE), None)?;
    Ok(format!("restored head {restored_head} = primary's; {report}"))
}

/// `partida-audit verify --database-url`, checking signatures against the published keys; at
/// least one signed checkpoint must have been verified.
fn verify(topology: &Topology, database_url: &str, query_url: Option<&str>) -> Result<String> {
    let mut command = Command::new(&topology.audit);
    command
        .env("PARTIDA_TOKEN", &topology.token)
        .args(["verify", "--json", "--quiet", "--database-url", database_url, "--keys"])
        .arg(topology.published.join("keys.json"));
    if let Some(url) = query_url {
        command.args(["--query-url", url]);
    }
    let output = command
        .output()
        .with_context(|| format!("running {}", topology.audit.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "partida-audit verify failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&stdout).with_context(|| format!("partida-audit's report is not JSON: {stdout}"))?;
    let checkpoints = report["checkpoints_verified"].as_u64().unwrap_or_default();
    if checkpoints == 0 {
        bail!("partida-audit verified no signed checkpoint: {stdout}");
    }
    let compared: Vec<String> = report["compared"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|compared| {
            format!(
                "{} ({} accounts)",
                compared["what"].as_str().unwrap_or("?"),
                compared["accounts"]
            )
        })
        .collect();
    Ok(format!(
        "partida-audit verify: {} events, {checkpoints} signed checkpoint(s), replay = {}",
        report["events"],
        compared.join(", ")
    ))
}
