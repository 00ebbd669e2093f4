//! The workloads, each against the running services.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::api::{Api, Shape, account, transfer_json};
use crate::load::{XorShift, closed_loop, open_loop, sliced_loop};
use crate::stats::Summary;

/// How long each measured run lasts, after its warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Registers EUR and opens `accounts` accounts plus the hot `fees` account (no limits, so every
/// transfer of the workloads is accepted).
pub async fn open_books(api: &Api, accounts: u64) -> anyhow::Result<()> {
    api.post("/v1/assets", r#"{"code":"EUR","scale":2}"#.into(), &[200, 201])
        .await
        .map_err(anyhow::Error::msg)?;
    api.post(
        "/v1/accounts",
        r#"{"id":"fees","asset":"EUR","name":"Fees","normal_side":"credit"}"#.into(),
        &[200, 201],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let mut tasks = Vec::new();
    for client in 0..32 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for n in (client..accounts).step_by(32) {
                let body = format!(r#"{{"id":"{}","asset":"EUR","name":"Account {n}"}}"#, account(n));
                api.post("/v1/accounts", body, &[200, 201]).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// W1: one transfer per request from `clients` closed loops, in `shape`; a hold is placed and
/// then posted, two requests that count as one operation.
pub async fn single_transfers(
    api: &Api,
    label: &str,
    clients: usize,
    shape: Shape,
    accounts: u64,
    timing: Timing,
) -> Summary {
    let [summary] = alternating_transfers(api, label, clients, [shape], accounts, timing, timing.measure).await;
    summary
}

/// How long each shape's turn lasts when the hot account's transfers take turns with uniform ones.
const HOT_TURN: Duration = Duration::from_millis(500);

/// W1's hot-account variant at `clients`: transfers that also pay a fee to one hot account, taking
/// turns of [`HOT_TURN`] with uniform transfers within one run, so that both see the same phases
/// of the machine and their ratio is free of its drift. Returns `[uniform, hot]`.
pub async fn hot_and_uniform(api: &Api, label: &str, clients: usize, accounts: u64, timing: Timing) -> [Summary; 2] {
    alternating_transfers(
        api,
        label,
        clients,
        [Shape::Plain, Shape::Fee],
        accounts,
        timing,
        HOT_TURN,
    )
    .await
}

/// W1 in `K` shapes taking turns in slices of `slice` within one run of `clients` closed loops
/// (see [`sliced_loop`]), for `timing.measure` each: each shape's summary over its own slices.
async fn alternating_transfers<const K: usize>(
    api: &Api,
    label: &str,
    clients: usize,
    shapes: [Shape; K],
    accounts: u64,
    timing: Timing,
    slice: Duration,
) -> [Summary; K] {
    let api = api.clone();
    let label = label.to_owned();
    let measure = timing.measure * K as u32;
    let samples = sliced_loop::<K, _, _>(clients, timing.warmup, measure, slice, move |client, seq, kind| {
        let api = api.clone();
        let id = format!("{label}-{client}-{seq}");
        let shape = shapes[kind];
        let (debit, credit) = XorShift::new((client as u64) << 40 ^ seq).pair(accounts);
        async move {
            api.post_on(
                Some(client),
                "/v1/transfers",
                transfer_json(&id, debit, credit, shape),
                &[201],
            )
            .await?;
            if shape == Shape::Hold {
                api.post_on(Some(client), &format!("/v1/transfers/{id}/post"), "{}".into(), &[201])
                    .await?;
            }
            Ok(())
        }
    })
    .await;
    samples.map(Summary::of)
}

/// W2: batches of `size` transfers per request; the rate is reported in transfers per second.
pub async fn batches(api: &Api, label: &str, clients: usize, size: usize, accounts: u64, timing: Timing) -> Summary {
    let api = api.clone();
    let label = label.to_owned();
    let summary = Summary::of(
        closed_loop(clients, timing.warmup, timing.measure, move |client, seq| {
            let api = api.clone();
            let mut rng = XorShift::new((client as u64) << 40 ^ seq);
            let mut body = String::with_capacity(size * 110 + 20);
            body.push_str(r#"{"transfers":["#);
            for i in 0..size {
                if i > 0 {
                    body.push(',');
                }
                let (debit, credit) = rng.pair(accounts);
                body.push_str(&transfer_json(
                    &format!("{label}-{client}-{seq}-{i}"),
                    debit,
                    credit,
                    Shape::Plain,
                ));
            }
            body.push_str("]}");
            async move {
                let answer = api.post_on(Some(client), "/v1/transfers/batch", body, &[200]).await?;
                let answer: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
                let failed = answer["results"]
                    .as_array()
                    .map_or(0, |r| r.iter().filter(|i| i.get("error").is_some()).count());
                if failed == 0 {
                    Ok(())
                } else {
                    Err(format!("{failed} transfers of the batch failed"))
                }
            }
        })
        .await,
    );
    summary.times(size as f64)
}

/// W3 measures the lag of one write in this many. A read per write would be a second workload
/// as heavy as the first on the same two cores, and the lag would measure the overload it causes.
pub const LAG_SAMPLE_EVERY: u64 = 10;

/// W3: transfers at `rate` per second; the lag of one in [`LAG_SAMPLE_EVERY`] is the time from
/// the write's answer until query-api answers a read of its debit account carrying its position
/// as `min_position`.
pub async fn projection_lag(api: &Api, rate: f64, accounts: u64, timing: Timing) -> Summary {
    let api = api.clone();
    let sample = open_loop(rate, timing.warmup, timing.measure, move |seq| {
        let api = api.clone();
        async move {
            let (debit, credit) = XorShift::new(seq ^ 0xA5A5).pair(accounts);
            let answer = api
                .post_on(
                    None,
                    "/v1/transfers",
                    transfer_json(&format!("w3-{seq}"), debit, credit, Shape::Plain),
                    &[201],
                )
                .await?;
            if seq % LAG_SAMPLE_EVERY != 0 {
                return Ok(None);
            }
            let answer: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
            let position = answer["position"].as_i64().ok_or("no position in the answer")?;
            let written = Instant::now();
            api.get_on(
                None,
                &format!("/v1/accounts/{}?min_position={position}", account(debit)),
            )
            .await?;
            Ok(Some(written.elapsed()))
        }
    })
    .await;
    Summary::of(sample)
}

/// W5: reads through query-api from `clients` closed loops.
pub async fn reads(api: &Api, entries: bool, clients: usize, accounts: u64, timing: Timing) -> Summary {
    let api = api.clone();
    Summary::of(
        closed_loop(clients, timing.warmup, timing.measure, move |client, seq| {
            let api = api.clone();
            let n = XorShift::new((client as u64) << 40 ^ seq).below(accounts);
            let path = if entries {
                format!("/v1/accounts/{}/entries?order=desc&limit=20", account(n))
            } else {
                format!("/v1/accounts/{}", account(n))
            };
            async move { api.get_on(Some(client), &path).await }
        })
        .await,
    )
}

/// Vacuums and analyses the live generation's read tables before W5, as pgbench's
/// initialisation does for its own table before `-S`: both then read tables whose rows are
/// older than the last vacuum, the steady state of a ledger that has run for a while (an
/// account's entries page is read from the index alone once the visibility map says so).
pub async fn vacuum_read_model(database: &sqlx::PgPool) -> anyhow::Result<()> {
    let schema = live_schema(database).await?;
    sqlx::query(&format!("VACUUM (ANALYZE) {schema}.accounts, {schema}.entries"))
        .execute(database)
        .await
        .context("vacuuming the read tables")?;
    Ok(())
}

/// The schema of the ledger projection's live generation (`ledger_g<N>`).
pub async fn live_schema(database: &sqlx::PgPool) -> anyhow::Result<String> {
    let generation: i32 = sqlx::query_scalar("SELECT generation FROM projections WHERE name = 'ledger'")
        .fetch_one(database)
        .await
        .context("reading the live generation")?;
    Ok(format!("ledger_g{generation}"))
}

/// Waits until the projection has applied everything written so far (so that runs do not
/// measure each other's backlog).
pub async fn settle(database: &sqlx::PgPool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let head: i64 = sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(database)
        .await?;
    loop {
        let checkpoint: i64 = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = 'ledger'")
            .fetch_one(database)
            .await
            .context("reading the checkpoint")?;
        if checkpoint >= head {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the projector did not catch up within 10 minutes ({checkpoint} of {head})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
