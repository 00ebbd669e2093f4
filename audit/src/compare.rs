//! The replay against what the services keep: the read tables (through query-api) and the
//! write-side state that decides overdrafts (in the database). Every difference is listed.

use std::collections::{HashMap, HashSet};

use ledger::State;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgConnection;

use crate::api::QueryApi;

/// Concurrent balance lookups for accounts that changed after the replayed position.
const LOOKUPS: usize = 16;

/// One disagreement between the replay and a service's tables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub account: String,
    pub field: String,
    pub replayed: String,
    pub stored: String,
}

/// What a comparison covered and what it found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Comparison {
    pub accounts: usize,
    pub differences: Vec<Difference>,
}

#[derive(Deserialize)]
struct ReadAccount {
    id: String,
    status: String,
    debits: i64,
    credits: i64,
    balance: i64,
    pending_debits: i64,
    pending_credits: i64,
    revision: i64,
    last_position: i64,
}

/// What a service keeps about one account, to compare with the replay: the totals, and where
/// it keeps them as of the replayed position, the balance, the pending amounts and the revision.
#[derive(Default)]
struct Stored {
    debits: i64,
    credits: i64,
    balance: Option<i64>,
    pending: Option<(i64, i64)>,
    revision: Option<i64>,
}

#[derive(Deserialize)]
struct AccountsPage {
    accounts: Vec<ReadAccount>,
    next: Option<String>,
}

/// Compares every account of query-api's read tables with the replay at `position` (reads
/// wait for the projection to reach it; accounts that changed since are read as of it).
pub async fn read_tables(api: &QueryApi, state: &State, position: i64) -> anyhow::Result<Comparison> {
    let http = api.http();
    let mut comparison = Comparison::default();
    let mut seen = HashSet::new();
    let mut later = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = http
            .get(api.url("/v1/accounts"))
            .query(&[("limit", "1000"), ("min_position", &position.to_string())]);
        if let Some(after) = &after {
            request = request.query(&[("after", after)]);
        }
        let page: AccountsPage = request.send().await?.error_for_status()?.json().await?;
        for account in page.accounts {
            seen.insert(account.id.clone());
            if account.last_position > position {
                later.push(account.id);
                continue;
            }
            let stored = Stored {
                debits: account.debits,
                credits: account.credits,
                balance: Some(account.balance),
                pending: Some((account.pending_debits, account.pending_credits)),
                revision: Some(account.revision),
            };
            compare_account(&mut comparison, state, &account.id, &account.status, &stored);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Accounts touched after the replayed position: their balances as of it.
    let lookups = later.iter().map(|id| {
        let http = http.clone();
        let url = api.url(&format!("/v1/accounts/{id}/balance"));
        async move {
            let answer: anyhow::Result<Value> = async {
                Ok(http
                    .get(&url)
                    .query(&[("at_position", position)])
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?)
            }
            .await;
            (id.clone(), answer)
        }
    });
    let answers: Vec<_> = futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(
        futures_util::stream::iter(lookups),
        LOOKUPS,
    ))
    .await;
    for (id, answer) in answers {
        let body = answer?;
        let number = |key: &str| body.get(key).and_then(Value::as_i64).unwrap_or_default();
        // The read tables keep no history of pending amounts or revisions.
        let stored = Stored {
            debits: number("debits"),
            credits: number("credits"),
            balance: Some(number("balance")),
            ..Stored::default()
        };
        compare_amounts(&mut comparison, state, &id, &stored);
    }
    for id in state.accounts.keys() {
        if !seen.contains(id.as_str()) {
            comparison.differences.push(missing(id.as_str(), "in the read tables"));
        }
    }
    comparison.accounts = seen.len();
    Ok(comparison)
}

/// Compares the write side's `write_accounts` and `write_assets` with the replay, in the
/// snapshot the log was read in.
pub async fn write_side(connection: &mut PgConnection, state: &State) -> anyhow::Result<Comparison> {
    type Row = (String, String, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, status, debits, credits, pending_debits, pending_credits, revision FROM write_accounts",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut comparison = Comparison {
        accounts: rows.len(),
        differences: Vec::new(),
    };
    let mut seen = HashSet::new();
    for (id, status, debits, credits, pending_debits, pending_credits, revision) in rows {
        let stored = Stored {
            debits,
            credits,
            pending: Some((pending_debits, pending_credits)),
            revision: Some(revision),
            ..Stored::default()
        };
        compare_account(&mut comparison, state, &id, &status, &stored);
        seen.insert(id);
    }
    for id in state.accounts.keys() {
        if !seen.contains(id.as_str()) {
            comparison.differences.push(missing(id.as_str(), "in write_accounts"));
        }
    }
    let assets: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>("SELECT code, posted FROM write_assets")
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .collect();
    for (code, asset) in &state.assets {
        let stored = assets.get(code.as_str());
        if stored != Some(&asset.posted) {
            comparison.differences.push(Difference {
                account: format!("asset {code}"),
                field: "posted".into(),
                replayed: asset.posted.to_string(),
                stored: stored.map_or_else(|| "missing".to_owned(), ToString::to_string),
            });
        }
    }
    Ok(comparison)
}

fn compare_account(comparison: &mut Comparison, state: &State, id: &str, status: &str, stored: &Stored) {
    let Some(replayed) = find(state, id) else {
        comparison.differences.push(Difference {
            account: id.to_owned(),
            field: "account".into(),
            replayed: "missing (never opened in the log)".into(),
            stored: "present".into(),
        });
        return;
    };
    if replayed.status.as_str() != status {
        comparison.differences.push(Difference {
            account: id.to_owned(),
            field: "status".into(),
            replayed: replayed.status.as_str().into(),
            stored: status.into(),
        });
    }
    compare_amounts(comparison, state, id, stored);
}

fn compare_amounts(comparison: &mut Comparison, state: &State, id: &str, stored: &Stored) {
    let Some(replayed) = find(state, id) else { return };
    let mut check = |field: &str, replayed: i64, stored: i64| {
        if replayed != stored {
            comparison.differences.push(Difference {
                account: id.to_owned(),
                field: field.into(),
                replayed: replayed.to_string(),
                stored: stored.to_string(),
            });
        }
    };
    check("debits", replayed.debits, stored.debits);
    check("credits", replayed.credits, stored.credits);
    if let Some(balance) = stored.balance {
        check("balance", replayed.balance(), balance);
    }
    if let Some((pending_debits, pending_credits)) = stored.pending {
        check("pending_debits", replayed.pending_debits, pending_debits);
        check("pending_credits", replayed.pending_credits, pending_credits);
    }
    if let Some(revision) = stored.revision {
        check("revision", replayed.revision, revision);
    }
}

fn find<'a>(state: &'a State, id: &str) -> Option<&'a ledger::Account> {
    ledger::AccountId::parse(id).ok().and_then(|id| state.accounts.get(&id))
}

fn missing(id: &str, place: &str) -> Difference {
    Difference {
        account: id.to_owned(),
        field: "account".into(),
        replayed: "present".into(),
        stored: format!("missing {place}"),
    }
}
