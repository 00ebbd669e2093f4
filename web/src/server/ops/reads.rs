//! Reads shaped for the pages: each gathers what one page shows from query-api.

use serde::Deserialize;
use serde_json::json;

use super::{LIST_PAGE, new_id, non_blank, utc_time};
use crate::api::types::{Account, Balances, Checkpoint, Entry, LogEvent, Page, Projection, Transfer, TrialBalance};
use crate::api::{
    AccountDetail, AccountList, BalanceSums, BalancesQuery, BooksPoint, Dashboard, SystemView, TransferDetail,
    TransferRow, UiError,
};
use crate::money::format_amount;
use crate::server::backend::{Backend, segment};

/// Entries shown per page of an account, and drawn in its chart.
const ENTRIES_PAGE: i64 = 25;
const CHART_POINTS: i64 = 200;

#[derive(Deserialize)]
struct Projections {
    projections: Vec<Projection>,
}

#[derive(Deserialize)]
struct Transfers {
    transfers: Vec<Transfer>,
    next: Option<i64>,
}

pub async fn dashboard(backend: &Backend) -> Result<Dashboard, UiError> {
    let recent = async {
        let page: Transfers = backend
            .read("/v1/transfers", &[("order", "desc".into()), ("limit", "10".into())])
            .await?;
        Ok::<_, UiError>(rows(backend, page.transfers).await)
    };
    let projections = backend.read::<Projections>("/v1/projections", &[]);
    let (assets, recent, projections, services) = tokio::join!(backend.assets(), recent, projections, backend.health());
    Ok(Dashboard {
        assets: assets?,
        recent: recent?,
        projections: projections?.projections,
        services,
    })
}

pub async fn accounts(
    backend: &Backend,
    prefix: Option<String>,
    asset: Option<String>,
    status: Option<String>,
    metadata: (Option<String>, Option<String>),
    after: Option<String>,
) -> Result<AccountList, UiError> {
    #[derive(Deserialize)]
    struct Accounts {
        accounts: Vec<Account>,
        next: Option<String>,
    }
    let mut query = vec![("limit", LIST_PAGE.to_string())];
    let filters = [
        ("prefix", prefix),
        ("asset", asset),
        ("status", status),
        ("metadata", metadata_param(metadata)?),
        ("after", after),
    ];
    for (name, value) in filters {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            query.push((name, value.trim().to_owned()));
        }
    }
    let (page, assets) = tokio::join!(backend.read::<Accounts>("/v1/accounts", &query), backend.assets());
    let page = page?;
    Ok(AccountList {
        accounts: Page {
            items: page.accounts,
            next: page.next,
        },
        assets: assets?,
    })
}

pub async fn account(
    backend: &Backend,
    id: &str,
    min_position: Option<i64>,
    after: Option<String>,
) -> Result<AccountDetail, UiError> {
    #[derive(Deserialize)]
    struct Entries {
        entries: Vec<Entry>,
        next: Option<String>,
    }
    let path = format!("/v1/accounts/{}", segment(id));
    let min = min_position.map(|p| ("min_position", p.to_string()));
    let account: Account = backend
        .read(&path, &min.clone().into_iter().collect::<Vec<_>>())
        .await?;
    let entries_path = format!("{path}/entries");
    let mut page_query = vec![("order", "desc".to_owned()), ("limit", ENTRIES_PAGE.to_string())];
    page_query.extend(after.map(|cursor| ("after", cursor)));
    let chart_query = [("order", "desc".to_owned()), ("limit", CHART_POINTS.to_string())];
    let (entries, chart, scales) = tokio::join!(
        backend.read::<Entries>(&entries_path, &page_query),
        backend.read::<Entries>(&entries_path, &chart_query),
        backend.scales()
    );
    let entries = entries?;
    let scale = scales?.get(&account.asset).copied().unwrap_or(0);
    let mut history: Vec<(i64, i64)> = chart?.entries.iter().map(|e| (e.position, e.balance)).collect();
    history.reverse();
    Ok(AccountDetail {
        account,
        scale,
        entries: Page {
            items: entries.entries,
            next: entries.next,
        },
        history,
    })
}

pub async fn transfers(
    backend: &Backend,
    after: Option<i64>,
    status: Option<String>,
    metadata: (Option<String>, Option<String>),
    min_position: Option<i64>,
) -> Result<Page<TransferRow, i64>, UiError> {
    let mut query = vec![("order", "desc".to_owned()), ("limit", LIST_PAGE.to_string())];
    query.extend(after.map(|position| ("after", position.to_string())));
    query.extend(non_blank(status.as_deref()).map(|status| ("status", status.to_owned())));
    query.extend(metadata_param(metadata)?.map(|metadata| ("metadata", metadata)));
    query.extend(min_position.map(|position| ("min_position", position.to_string())));
    let page: Transfers = backend.read("/v1/transfers", &query).await?;
    Ok(Page {
        items: rows(backend, page.transfers).await,
        next: page.next,
    })
}

pub async fn transfer(backend: &Backend, id: &str, min_position: Option<i64>) -> Result<TransferDetail, UiError> {
    let query: Vec<_> = min_position
        .map(|p| ("min_position", p.to_string()))
        .into_iter()
        .collect();
    let transfer: Transfer = backend.read(&format!("/v1/transfers/{}", segment(id)), &query).await?;
    Ok(TransferDetail {
        row: rows(backend, vec![transfer]).await.remove(0),
        form_key: new_id("form"),
    })
}

/// Transfers with their amounts written out; an account whose asset cannot be found shows the
/// bare number.
async fn rows(backend: &Backend, transfers: Vec<Transfer>) -> Vec<TransferRow> {
    let accounts: Vec<&str> = transfers
        .iter()
        .flat_map(|t| {
            t.postings
                .iter()
                .chain(t.held.iter().flatten())
                .map(|p| p.debit.as_str())
        })
        .collect();
    let assets = backend.assets_of(&accounts).await;
    let written = |postings: &[crate::api::types::Posting]| -> Vec<String> {
        postings
            .iter()
            .map(|posting| match assets.get(&posting.debit) {
                Some(asset) => format!("{} {}", format_amount(posting.amount, asset.scale), asset.code),
                None => posting.amount.to_string(),
            })
            .collect()
    };
    transfers
        .into_iter()
        .map(|transfer| {
            let amounts = written(&transfer.postings);
            let held_amounts = transfer.held.as_deref().map(written).unwrap_or_default();
            TransferRow {
                transfer,
                amounts,
                held_amounts,
            }
        })
        .collect()
}

pub async fn events(
    backend: &Backend,
    after: Option<i64>,
    event_type: Option<String>,
    stream: Option<String>,
) -> Result<Page<LogEvent, i64>, UiError> {
    #[derive(Deserialize)]
    struct Events {
        events: Vec<LogEvent>,
        next: Option<i64>,
    }
    let event_type = event_type.filter(|t| !t.trim().is_empty());
    if let Some(stream) = stream.filter(|s| !s.trim().is_empty()) {
        // A stream is short and read in version order; `after` is a stream version here.
        let mut query = vec![("limit", LIST_PAGE.to_string())];
        query.extend(after.map(|version| ("after_version", version.to_string())));
        let page: Events = match backend
            .read(&format!("/v1/streams/{}", segment(stream.trim())), &query)
            .await
        {
            Err(error) if error.code == "stream_not_found" => Events {
                events: Vec::new(),
                next: None,
            },
            other => other?,
        };
        let events = page
            .events
            .into_iter()
            .filter(|e| event_type.as_ref().is_none_or(|t| &e.event_type == t))
            .collect();
        return Ok(Page {
            items: events,
            next: page.next,
        });
    }
    let mut query = vec![("order", "desc".to_owned()), ("limit", LIST_PAGE.to_string())];
    query.extend(after.map(|position| ("after", position.to_string())));
    query.extend(event_type.map(|t| ("type", t)));
    let page: Events = backend.read("/v1/events", &query).await?;
    Ok(Page {
        items: page.events,
        next: page.next,
    })
}

pub async fn system(backend: &Backend) -> Result<SystemView, UiError> {
    let (projections, services, checkpoint) = tokio::join!(
        backend.read::<Projections>("/v1/projections", &[]),
        backend.health(),
        backend.read::<Checkpoint>("/v1/audit/checkpoints/latest", &[])
    );
    let projections = projections?.projections;
    let head = projections.iter().map(|p| p.head).max().unwrap_or(0);
    let checkpoint = match checkpoint {
        Ok(checkpoint) => Some(checkpoint),
        Err(error) if error.code == "checkpoint_not_found" => None,
        Err(error) => return Err(error),
    };
    Ok(SystemView {
        projections,
        services,
        head,
        checkpoint,
    })
}

pub async fn trial_balance(backend: &Backend, point: BooksPoint) -> Result<TrialBalance, UiError> {
    let mut query = Vec::new();
    if let Some(position) = non_blank(point.at_position.as_deref()) {
        query.push(("at_position", position.to_owned()));
    }
    if let Some(at) = point.at_time.as_deref().and_then(utc_time) {
        query.push(("at_time", at));
    }
    if let Some(at) = point.as_of_effective.as_deref().and_then(utc_time) {
        query.push(("as_of_effective", at));
    }
    let mut books: TrialBalance = backend.read("/v1/trial-balance", &query).await?;
    // Only the lines a page shows travel to the browser; the totals cover every account.
    for asset in &mut books.assets {
        asset.hidden = asset.accounts.len().saturating_sub(TRIAL_BALANCE_LINES);
        asset.accounts.truncate(TRIAL_BALANCE_LINES);
    }
    Ok(books)
}

/// Account lines of a trial balance shown per asset.
const TRIAL_BALANCE_LINES: usize = 1_000;

/// Aggregated balances, with each asset's scale to show them.
pub async fn balances(backend: &Backend, asked: BalancesQuery) -> Result<BalanceSums, UiError> {
    let mut query = Vec::new();
    for (name, value) in [
        ("accounts", &asked.accounts),
        ("asset", &asked.asset),
        ("group_by", &asked.group_by),
    ] {
        query.extend(non_blank(value.as_deref()).map(|value| (name, value.to_owned())));
    }
    query.extend(metadata_param((asked.metadata_key, asked.metadata_value))?.map(|metadata| ("metadata", metadata)));
    let (sums, scales) = tokio::join!(backend.read::<Balances>("/v1/balances", &query), backend.scales());
    Ok(BalanceSums {
        balances: sums?,
        scales: scales?.into_iter().collect(),
    })
}

/// A list filter on one metadata key's text value (`key`, `value` as typed) as the APIs take it:
/// a JSON object the metadata must contain. None when no key is given.
fn metadata_param((key, value): (Option<String>, Option<String>)) -> Result<Option<String>, UiError> {
    let value = non_blank(value.as_deref());
    match non_blank(key.as_deref()) {
        Some(key) => Ok(Some(json!({ key: value.unwrap_or_default() }).to_string())),
        None if value.is_some() => Err(UiError::field(
            "validation_failed",
            "metadata_key",
            "Name the metadata key the value is for.",
        )),
        None => Ok(None),
    }
}
