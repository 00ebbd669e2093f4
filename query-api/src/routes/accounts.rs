use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ledger::{AccountId, AccountStatus, AssetCode};
use partida_service::Json;
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::books::{Effective, Line, PointInTime};
use super::select::{metadata_condition, metadata_filter};
use super::{db_error, page};
use crate::AppState;
use crate::consistency::{MinPosition, MinPositionQuery, Source};

/// The account's balance limits.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = AccountFlags)]
pub(crate) struct Flags {
    debits_must_not_exceed_credits: bool,
    credits_must_not_exceed_debits: bool,
}

/// An account with its totals, as the projection has applied the log.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Account)]
pub(crate) struct AccountView {
    #[schema(value_type = openapi::AccountId)]
    id: String,
    #[schema(value_type = openapi::AssetCode)]
    asset: String,
    name: String,
    /// `debit` or `credit`.
    #[schema(pattern = "^(debit|credit)$")]
    normal_side: String,
    #[sqlx(flatten)]
    flags: Flags,
    #[schema(value_type = openapi::Metadata)]
    metadata: Value,
    /// `open`, `frozen` or `closed`.
    #[schema(pattern = "^(open|frozen|closed)$")]
    status: String,
    /// Everything debited, in minor units.
    #[schema(minimum = 0)]
    debits: i64,
    /// Everything credited, in minor units.
    #[schema(minimum = 0)]
    credits: i64,
    /// On the normal side: debits - credits for a debit account, credits - debits otherwise.
    balance: i64,
    /// Reserved by open holds (two-phase transfers) on the debit side.
    #[schema(minimum = 0)]
    pending_debits: i64,
    /// Reserved by open holds on the credit side.
    #[schema(minimum = 0)]
    pending_credits: i64,
    /// The balance less what open holds would take from it: what a new transfer can spend.
    available: i64,
    /// How many events changed the account (its opening and lifecycle changes, and every
    /// transfer, hold and resolution with a leg on it; not metadata changes). A transfer's
    /// `revision` condition requires it unchanged.
    #[schema(minimum = 1)]
    revision: i64,
    opened_position: i64,
    /// The position of the last event that touched the account.
    last_position: i64,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    opened_at: OffsetDateTime,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    updated_at: OffsetDateTime,
}

/// A page of accounts.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountPage {
    accounts: Vec<AccountView>,
    /// Pass as `after` for the next page; null on the last.
    #[schema(value_type = Option<openapi::AccountId>)]
    next: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, asset, name, normal_side, debits_must_not_exceed_credits, \
    credits_must_not_exceed_debits, metadata, status, debits, credits, balance, pending_debits, pending_credits, \
    balance - CASE WHEN normal_side = 'credit' THEN pending_debits ELSE pending_credits END AS available, \
    revision, opened_position, last_position, opened_at, updated_at";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only accounts in this asset.
    #[param(value_type = Option<openapi::AssetCode>)]
    asset: Option<String>,
    /// Only accounts in this state: `open`, `frozen` or `closed`.
    #[param(pattern = "^(open|frozen|closed)$")]
    status: Option<String>,
    /// Only ids starting with this.
    #[param(value_type = Option<openapi::AccountId>)]
    prefix: Option<String>,
    /// Only accounts whose metadata contains this JSON object (`@>`).
    #[param(example = r#"{"tier":"gold"}"#)]
    metadata: Option<String>,
    /// The last id of the previous page (its `next`).
    #[param(value_type = Option<openapi::AccountId>)]
    after: Option<String>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Accounts by id, filtered by asset, status, id prefix and metadata; `next` continues the list.
#[utoipa::path(
    get,
    path = "/v1/accounts",
    operation_id = "listAccounts",
    tag = "accounts",
    params(ListParams, MinPositionQuery),
    responses((status = 200, body = AccountPage))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<ListParams>,
) -> Result<Json<AccountPage>, ApiError> {
    let limit = page::limit(params.limit)?;
    if let Some(asset) = &params.asset {
        AssetCode::parse(asset.as_str()).map_err(|e| ApiError::validation(format!("asset: {e}"), "asset"))?;
    }
    if let Some(prefix) = &params.prefix {
        let valid = prefix.len() <= AccountId::MAX_LEN && AccountId::parse(prefix.as_str()).is_ok();
        if !valid {
            return Err(ApiError::validation(
                "prefix: must be up to 128 characters of [A-Za-z0-9:._-]",
                "prefix",
            ));
        }
    }
    if let Some(after) = &params.after {
        AccountId::parse(after.as_str()).map_err(|e| ApiError::validation(format!("after: {e}"), "after"))?;
    }
    if let Some(status) = &params.status {
        AccountStatus::parse(status)
            .ok_or_else(|| ApiError::validation("status must be open, frozen or closed", "status"))?;
    }
    let metadata = metadata_filter(params.metadata.as_deref())?;
    min.wait(&state, Source::Projection).await?;
    let by_metadata = metadata_condition(metadata.as_deref(), "", 6);
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM {}.accounts \
          WHERE ($1::text IS NULL OR asset = $1) AND ($2::text IS NULL OR status = $2) \
            AND ($3::text IS NULL OR (id >= $3 AND starts_with(id, $3))) AND ($4::text IS NULL OR id > $4) \
            {by_metadata} \
          ORDER BY id LIMIT $5",
        state.model.schema()
    );
    let accounts: Vec<AccountView> = sqlx::query_as(&sql)
        .bind(&params.asset)
        .bind(&params.status)
        .bind(&params.prefix)
        .bind(&params.after)
        .bind(limit)
        .bind(metadata)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.id.clone()))
        .flatten();
    Ok(Json(AccountPage { accounts, next }))
}

pub(crate) fn account_id(path: Result<Path<String>, PathRejection>) -> Result<AccountId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::validation(e.body_text(), "id"))?;
    AccountId::parse(raw).map_err(|e| ApiError::validation(format!("id: {e}"), "id"))
}

fn not_found(id: &AccountId) -> ApiError {
    ApiError::not_found("account_not_found", format!("account {id} does not exist"))
        .with_details(json!({"account": id}))
}

async fn find(state: &AppState, id: &AccountId) -> Result<AccountView, ApiError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM {}.accounts WHERE id = $1",
        state.model.schema()
    );
    sqlx::query_as(&sql)
        .bind(id.as_str())
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| db_error(&e))?
        .ok_or_else(|| not_found(id))
}

/// One account with its totals.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    operation_id = "getAccount",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), MinPositionQuery),
    responses(
        (status = 200, body = AccountView),
        (status = 404, description = "`account_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountView>, ApiError> {
    let id = account_id(path)?;
    min.wait(&state, Source::Projection).await?;
    Ok(Json(find(&state, &id).await?))
}

/// One leg of a transfer as it touched the account, with the account's totals after it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Entry)]
pub(crate) struct EntryView {
    /// The transfer's log position.
    position: i64,
    /// The leg's index in the transfer.
    seq: i32,
    #[schema(value_type = openapi::TransferId)]
    transfer_id: String,
    /// `debit` or `credit`.
    #[schema(value_type = String, pattern = "^(debit|credit)$")]
    side: &'static str,
    #[schema(minimum = 1)]
    amount: i64,
    debits: i64,
    credits: i64,
    balance: i64,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    recorded_at: OffsetDateTime,
    /// When the leg takes effect for the books: its transfer's effective time, or `recorded_at`.
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    effective_at: OffsetDateTime,
}

/// An entry read from `entries_page_sql`'s columns by their place: a page decodes twenty rows,
/// and a lookup by name hashes the name for each column of each.
impl sqlx::FromRow<'_, PgRow> for EntryView {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let side = match row.try_get::<&str, _>(3)? {
            "debit" => "debit",
            "credit" => "credit",
            other => return Err(sqlx::Error::Decode(format!("an entry's side is {other:?}").into())),
        };
        Ok(Self {
            position: row.try_get(0)?,
            seq: row.try_get(1)?,
            transfer_id: row.try_get(2)?,
            side,
            amount: row.try_get(4)?,
            debits: row.try_get(5)?,
            credits: row.try_get(6)?,
            balance: row.try_get(7)?,
            recorded_at: row.try_get(8)?,
            effective_at: row.try_get(9)?,
        })
    }
}

/// A page of an account's entries.
#[derive(Serialize, ToSchema)]
pub(crate) struct EntryPage {
    #[schema(value_type = openapi::AccountId)]
    account: AccountId,
    entries: Vec<EntryView>,
    /// Pass as `after` for the next page (`position.seq`); null on the last.
    next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntryParams {
    /// `position.seq` of the last entry seen: the previous page's `next`.
    #[param(pattern = "^[0-9]+\\.[0-9]+$")]
    after: Option<String>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[serde(default)]
    #[param(inline)]
    order: page::Order,
}

fn parse_cursor(raw: &str) -> Result<(i64, i32), ApiError> {
    raw.split_once('.')
        .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)))
        .ok_or_else(|| ApiError::validation("after must be a cursor from a previous page (position.seq)", "after"))
}

/// An account's entries: one per leg that touched it, with the account's totals after it.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/entries",
    operation_id = "listAccountEntries",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), EntryParams, MinPositionQuery),
    responses(
        (status = 200, body = EntryPage),
        (status = 404, description = "`account_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn entries(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<EntryParams>,
) -> Result<Json<EntryPage>, ApiError> {
    let id = account_id(path)?;
    let limit = page::limit(params.limit)?;
    let cursor = match (&params.after, params.order) {
        (Some(raw), _) => parse_cursor(raw)?,
        (None, page::Order::Asc) => (-1, -1),
        (None, page::Order::Desc) => (i64::MAX, i32::MAX),
    };
    min.wait(&state, Source::Projection).await?;
    let sql = entries_page_sql(&state.model.schema(), params.order == page::Order::Desc, limit);
    let entries: Vec<EntryView> = sqlx::query_as(&sql)
        .bind(id.as_str())
        .bind(cursor.0)
        .bind(cursor.1)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    if entries.is_empty() {
        find(&state, &id).await?;
    }
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| format!("{}.{}", e.position, e.seq)))
        .flatten();
    Ok(Json(EntryPage {
        account: id,
        entries,
        next,
    }))
}

/// The statement of a page of an account's entries in `schema`: `$1` the account, `($2, $3)` the
/// cursor's `(position, seq)`. It reads only columns the entries' key carries, so PostgreSQL
/// answers it from the key's index alone (migration 0018). Its columns are in `EntryView`'s
/// order: they are decoded by their place.
///
/// The page size is in the text, not bound: with `LIMIT $4` PostgreSQL planned this statement
/// again at every execution (a quarter of its time under W5's entries pages), as the generic
/// plan's estimate for an unknown limit costs more than the custom plans.
pub fn entries_page_sql(schema: &str, descending: bool, limit: i64) -> String {
    let order = if descending {
        page::Order::Desc
    } else {
        page::Order::Asc
    };
    format!(
        "SELECT position, seq, transfer_id, side, amount, debits, credits, balance, recorded_at, \
                coalesce(effective_at, recorded_at) AS effective_at \
           FROM {schema}.entries WHERE account_id = $1 AND (position, seq) {after} ($2, $3) \
          ORDER BY position {direction}, seq {direction} LIMIT {limit}",
        after = order.after(),
        direction = order.sql(),
    )
}

/// An account's totals at a point in the log.
#[derive(Serialize, ToSchema)]
pub(crate) struct Balance {
    #[schema(value_type = openapi::AccountId)]
    account: AccountId,
    #[schema(value_type = openapi::AssetCode)]
    asset: String,
    /// The position the totals are as of.
    at_position: i64,
    /// Present when the totals are by effective time: only legs taking effect by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::Timestamp>)]
    as_of_effective: Option<String>,
    debits: i64,
    credits: i64,
    balance: i64,
    /// Now only (the read tables keep no history of holds): reserved by open holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_debits: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_credits: Option<i64>,
    /// Now only: the balance less what open holds would take from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    available: Option<i64>,
    /// Now only: the account's revision, for a `revision` condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<i64>,
}

impl Balance {
    fn new(account: AccountId, asset: String, at_position: i64, (debits, credits, balance): (i64, i64, i64)) -> Self {
        Self {
            account,
            asset,
            at_position,
            as_of_effective: None,
            debits,
            credits,
            balance,
            pending_debits: None,
            pending_credits: None,
            available: None,
            revision: None,
        }
    }
}

/// An account's balance now, right after event `at_position`, or after the last event recorded
/// at or before `at_time`; with `as_of_effective`, only the legs taking effect by then.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    operation_id = "getAccountBalance",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), PointInTime, MinPositionQuery),
    responses(
        (status = 200, body = Balance),
        (status = 404, description = "`account_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn balance(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
    Query(point): Query<PointInTime>,
) -> Result<Json<Balance>, ApiError> {
    let id = account_id(path)?;
    let effective = point.effective()?;
    let at_position = point.resolve(&state.pool).await?;
    // A balance as of N is final only once the projection has passed N.
    let min = MinPosition(min.0.max(at_position));
    min.wait(&state, Source::Projection).await?;
    let account = find(&state, &id).await?;
    if let Some(effective_at) = effective {
        let known = at_position.unwrap_or_else(|| state.model.reached().checkpoint);
        return effective_balance(
            &state,
            id,
            account.asset,
            Effective::new(&state.pool, effective_at, known).await?,
        )
        .await
        .map(Json);
    }
    let Some(at) = at_position else {
        let totals = (account.debits, account.credits, account.balance);
        return Ok(Json(Balance {
            pending_debits: Some(account.pending_debits),
            pending_credits: Some(account.pending_credits),
            available: Some(account.available),
            revision: Some(account.revision),
            ..Balance::new(id, account.asset, account.last_position, totals)
        }));
    };
    let sql = format!(
        "SELECT debits, credits, balance FROM {}.entries WHERE account_id = $1 AND position <= $2 \
          ORDER BY position DESC, seq DESC LIMIT 1",
        state.model.schema()
    );
    let totals: Option<(i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(id.as_str())
        .bind(at)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(Json(Balance::new(id, account.asset, at, totals.unwrap_or((0, 0, 0)))))
}

/// The account's totals over the legs taking effect by `effective.at`, as known at `effective.known`.
async fn effective_balance(
    state: &AppState,
    id: AccountId,
    asset: String,
    effective: Effective,
) -> Result<Balance, ApiError> {
    let lines = effective
        .lines(&state.pool, &state.model.schema(), Some(id.as_str()))
        .await?;
    let totals = lines.first().map_or((0, 0, 0), Line::totals);
    Ok(Balance {
        as_of_effective: Some(effective.as_of()),
        ..Balance::new(id, asset, effective.known, totals)
    })
}
