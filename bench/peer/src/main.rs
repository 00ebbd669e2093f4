//! The peer baseline for W1: the same transfers between random accounts, through cqrs-es with
//! postgres-es, written the way that library's users write them (its bank-account demo): an
//! event-sourced `Account` aggregate, a transfer as a withdrawal from one account and a deposit to
//! the other, each a command on its own aggregate, retried on an optimistic-concurrency conflict.
//! Run in-process (no HTTP in front), which favours the peer.
//!
//! Usage: peer-cqrs-es DATABASE_URL CLIENTS SECONDS ACCOUNTS; prints one JSON line.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Deposited { amount: i64, balance: i64 },
    Withdrawn { amount: i64, balance: i64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Deposited { .. } => "Deposited".into(),
            Self::Withdrawn { .. } => "Withdrawn".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Deserialize)]
enum AccountCommand {
    Deposit { amount: i64 },
    Withdraw { amount: i64 },
}

#[derive(Debug)]
struct AccountError(String);

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccountError {}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    balance: i64,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AccountError> {
        match command {
            AccountCommand::Deposit { amount } if amount > 0 => {
                let balance = self.balance + amount;
                sink.write(AccountEvent::Deposited { amount, balance }, self).await;
            }
            AccountCommand::Withdraw { amount } if amount > 0 => {
                let balance = self.balance - amount;
                sink.write(AccountEvent::Withdrawn { amount, balance }, self).await;
            }
            _ => return Err(AccountError("amounts must be positive".into())),
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Deposited { balance, .. } | AccountEvent::Withdrawn { balance, .. } => self.balance = balance,
        }
    }
}

type Cqrs = postgres_es::PostgresCqrs<Account>;

/// Executes `command`, retrying optimistic-concurrency conflicts as the library's users do.
async fn execute(cqrs: &Cqrs, id: &str, command: impl Fn() -> AccountCommand) -> Result<u64, String> {
    let mut conflicts = 0;
    loop {
        match cqrs.execute(id, command()).await {
            Ok(()) => return Ok(conflicts),
            Err(AggregateError::AggregateConflict) => conflicts += 1,
            Err(other) => return Err(other.to_string()),
        }
    }
}

fn pair(seed: u64, n: u64) -> (u64, u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let a = next() % n;
    let b = next() % (n - 1);
    (a, if b >= a { b + 1 } else { b })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, clients, seconds, accounts] = args.as_slice() else {
        return Err("usage: peer-cqrs-es DATABASE_URL CLIENTS SECONDS ACCOUNTS".into());
    };
    let (clients, seconds, accounts): (usize, u64, u64) = (clients.parse()?, seconds.parse()?, accounts.parse()?);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(clients.min(64) as u32)
        .connect(url)
        .await?;
    for statement in [
        "CREATE TABLE IF NOT EXISTS events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
           sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
           payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
        "CREATE TABLE IF NOT EXISTS snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
           last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, \
           payload json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    ] {
        sqlx::query(statement).execute(&pool).await?;
    }
    let cqrs = Arc::new(postgres_es::postgres_cqrs::<Account>(pool, vec![], ()));
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let (measure_from, end) = (start + warmup, start + warmup + Duration::from_secs(seconds));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let cqrs = cqrs.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut conflicts) = (Vec::new(), 0u64, 0u64);
            for seq in 0u64.. {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let (debit, credit) = pair((client as u64) << 40 ^ seq, accounts);
                let withdrawn = execute(&cqrs, &format!("acc-{debit:05}"), || AccountCommand::Withdraw {
                    amount: 100,
                })
                .await;
                let deposited = match withdrawn {
                    Ok(c) => execute(&cqrs, &format!("acc-{credit:05}"), || AccountCommand::Deposit {
                        amount: 100,
                    })
                    .await
                    .map(|d| c + d),
                    Err(e) => Err(e),
                };
                if started < measure_from {
                    continue;
                }
                latencies.push(started.elapsed().as_micros() as u64);
                match deposited {
                    Ok(c) => conflicts += c,
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors, conflicts)
        }));
    }
    let (mut latencies, mut errors, mut conflicts) = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, e, c) = task.await?;
        latencies.extend(l);
        errors += e;
        conflicts += c;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from).as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((q * latencies.len() as f64).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |v| *v as f64 / 1000.0)
    };
    let count = latencies.len() as u64 - errors;
    println!(
        "{}",
        serde_json::json!({
            "count": count, "errors": errors, "conflicts_retried": conflicts, "seconds": elapsed,
            "rate": count as f64 / elapsed, "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)
        })
    );
    Ok(())
}
