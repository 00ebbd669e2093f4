//! `GET /v1/balances`: balances summed over a selection of accounts (an id pattern, a metadata
//! filter, an asset), per asset and optionally per value of a metadata key.

use axum::extract::State;
use partida_service::Json;
use partida_service::openapi;
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::db_error;
use super::select::{Pattern, metadata_condition, metadata_filter};
use crate::AppState;
use crate::consistency::{MinPosition, MinPositionQuery, Source};

/// The most groups one answer holds.
const MAX_GROUPS: usize = 1_000;

/// The longest metadata key to group by.
const MAX_KEY_CHARS: usize = 256;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BalanceParams {
    /// Only accounts whose id matches this pattern: `*` stands for one `:`-free segment
    /// (`users:*:wallet`); without `*`, the id itself.
    #[param(example = "users:*:wallet")]
    accounts: Option<String>,
    /// Only accounts whose metadata contains this JSON object (`@>`).
    #[param(example = r#"{"tier":"gold"}"#)]
    metadata: Option<String>,
    /// Only accounts in this asset.
    #[param(value_type = Option<openapi::AssetCode>)]
    asset: Option<String>,
    /// A metadata key: one group per asset and value of the key (accounts without it form the
    /// group whose value is null).
    #[param(min_length = 1, max_length = 256, example = "region")]
    group_by: Option<String>,
}

/// The summed totals of one group of accounts. Sums may pass the 64-bit range (accounts of both
/// normal sides); they are exact JSON integers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BalanceGroup {
    #[schema(value_type = openapi::AssetCode)]
    asset: String,
    /// The group's value of the `group_by` key; null for the accounts without it, and when
    /// not grouping.
    #[schema(value_type = Value)]
    value: Option<Value>,
    /// How many accounts the group sums.
    #[schema(minimum = 1)]
    accounts: i64,
    #[schema(value_type = i64)]
    debits: i128,
    #[schema(value_type = i64)]
    credits: i128,
    /// Each account's balance on its own normal side, summed.
    #[schema(value_type = i64)]
    balance: i128,
    #[schema(value_type = i64)]
    pending_debits: i128,
    #[schema(value_type = i64)]
    pending_credits: i128,
    /// Each account's available balance, summed.
    #[schema(value_type = i64)]
    available: i128,
}

/// Balances summed per group, as the projection has applied the log up to `at_position`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Balances {
    at_position: i64,
    /// The key the groups are by, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<String>,
    /// By asset, then value.
    groups: Vec<BalanceGroup>,
}

/// Balances summed over the accounts an id pattern, a metadata filter and an asset select, per
/// asset (amounts of different assets never add up) and optionally per value of a metadata key.
#[utoipa::path(
    get,
    path = "/v1/balances",
    operation_id = "getBalances",
    tag = "books",
    params(BalanceParams, MinPositionQuery),
    responses((status = 200, body = Balances))
)]
pub(crate) async fn balances(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<BalanceParams>,
) -> Result<Json<Balances>, ApiError> {
    let pattern = params.accounts.as_deref().map(Pattern::parse).transpose()?;
    let metadata = metadata_filter(params.metadata.as_deref())?;
    if let Some(asset) = &params.asset {
        ledger::AssetCode::parse(asset.as_str()).map_err(|e| ApiError::validation(format!("asset: {e}"), "asset"))?;
    }
    if let Some(key) = &params.group_by
        && (key.is_empty() || key.chars().count() > MAX_KEY_CHARS || key.contains('\0'))
    {
        return Err(ApiError::validation(
            format!("group_by must be a metadata key of 1 to {MAX_KEY_CHARS} characters"),
            "group_by",
        ));
    }
    min.wait(&state, Source::Projection).await?;
    // Only the conditions asked for, so each statement is planned for its own filters.
    let by_pattern = if pattern.is_some() {
        "AND a.id >= $1 AND starts_with(a.id, $1) AND a.id ~ $2"
    } else {
        ""
    };
    let by_metadata = metadata_condition(metadata.as_deref(), "a.", 3);
    let by_asset = if params.asset.is_some() { "AND a.asset = $4" } else { "" };
    // A key holding JSON null groups with the accounts without it.
    let value = if params.group_by.is_some() {
        "NULLIF(a.metadata -> $5, 'null'::jsonb)"
    } else {
        "NULL::jsonb"
    };
    // One statement, so the groups and the checkpoint are read from one snapshot. The sums are
    // numeric: accounts of both normal sides can sum past i64, so they travel as text.
    let sql = format!(
        "SELECT p.checkpoint, g.* FROM projections p \
           LEFT JOIN LATERAL ( \
             SELECT a.asset, {value} AS value, count(*) AS accounts, sum(a.debits)::text AS debits, \
                    sum(a.credits)::text AS credits, sum(a.balance)::text AS balance, \
                    sum(a.pending_debits)::text AS pending_debits, \
                    sum(a.pending_credits)::text AS pending_credits, \
                    sum(a.balance::numeric - CASE WHEN a.normal_side = 'credit' THEN a.pending_debits \
                                                  ELSE a.pending_credits END)::text AS available \
               FROM {schema}.accounts a WHERE true {by_pattern} {by_metadata} {by_asset} \
              GROUP BY 1, 2 ORDER BY 1, 2 LIMIT {limit}) g ON true \
          WHERE p.name = 'ledger'",
        schema = state.model.schema(),
        limit = MAX_GROUPS + 1,
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(pattern.as_ref().map(|p| p.prefix.as_str()))
        .bind(pattern.as_ref().map(|p| p.regex.as_str()))
        .bind(metadata.as_deref())
        .bind(params.asset.as_deref())
        .bind(params.group_by.as_deref())
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    if rows.len() > MAX_GROUPS {
        return Err(ApiError::validation(
            format!("the selection has more than {MAX_GROUPS} groups; narrow it by accounts, metadata or asset"),
            "group_by",
        ));
    }
    let at_position = rows.first().map_or(0, |r| r.checkpoint);
    let groups = rows.into_iter().filter_map(|r| r.group).collect();
    Ok(Json(Balances {
        at_position,
        group_by: params.group_by,
        groups,
    }))
}

/// A row of the statement: the checkpoint, and a group unless the selection is empty.
struct Row {
    checkpoint: i64,
    group: Option<BalanceGroup>,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Row {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        let checkpoint = row.try_get("checkpoint")?;
        let Some(asset) = row.try_get::<Option<String>, _>("asset")? else {
            return Ok(Self {
                checkpoint,
                group: None,
            });
        };
        // Sums of i64 columns: integers, well inside i128.
        let sum = |column: &str| -> Result<i128, sqlx::Error> {
            let text: String = row.try_get(column)?;
            text.parse()
                .map_err(|_| sqlx::Error::Decode(format!("{column} is no integer: {text}").into()))
        };
        let group = Some(BalanceGroup {
            asset,
            value: row.try_get("value")?,
            accounts: row.try_get("accounts")?,
            debits: sum("debits")?,
            credits: sum("credits")?,
            balance: sum("balance")?,
            pending_debits: sum("pending_debits")?,
            pending_credits: sum("pending_credits")?,
            available: sum("available")?,
        });
        Ok(Self { checkpoint, group })
    }
}
