//! `GET /v1/trial-balance?at_position=N | at_time=T`: every account's debits, credits and balance
//! as of a point in the log, with per-asset totals, which must agree (double entry).
//!
//! A time names the last event recorded at or before it (the log's time never runs backwards,
//! so this is well defined); it is found by bisecting positions, a few index probes. Without
//! either, the books as the projection has applied them.
//!
//! `as_of_effective=E` draws the books up by effective time instead: every leg that takes effect
//! at or before E, among those the log held at the point (bi-temporal: what was known at N about
//! E). See [`Effective`] for how that stays a few index probes.

use axum::extract::State;
use partida_eventstore::ReadPool;
use partida_service::Json;
use partida_service::openapi;
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::db_error;
use crate::AppState;
use crate::consistency::{MinPosition, Source};

/// `at_position=N` or `at_time=T`: a point in the log, for the books and for one balance.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PointInTime {
    /// As of right after this log position. Not with `at_time`.
    #[param(minimum = 0)]
    at_position: Option<i64>,
    /// As of the last event recorded at or before this RFC 3339 time. Not with `at_position`.
    #[param(format = DateTime, example = "2026-11-22T10:00:00Z")]
    at_time: Option<String>,
    /// Only the legs taking effect at or before this RFC 3339 time, among those recorded by the
    /// point in the log (default: what the projection has applied).
    #[param(format = DateTime, example = "2026-10-31T23:59:59Z")]
    as_of_effective: Option<String>,
}

impl PointInTime {
    /// The position asked for, `None` for "now"; 400 for both, a negative position or no time.
    pub(crate) async fn resolve(&self, pool: &ReadPool) -> Result<Option<i64>, ApiError> {
        match (self.at_position, &self.at_time) {
            (Some(_), Some(_)) => Err(ApiError::validation("give at_position or at_time, not both", "at_time")),
            (Some(position), None) if position < 0 => Err(ApiError::validation(
                "at_position must be a non-negative integer",
                "at_position",
            )),
            (Some(position), None) => Ok(Some(position)),
            (None, Some(text)) => position_at_time(pool, text).await.map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The effective time asked for, in microseconds; 400 when it is no time.
    pub(crate) fn effective(&self) -> Result<Option<i64>, ApiError> {
        self.as_of_effective
            .as_deref()
            .map(|text| {
                partida_eventstore::parse_timestamp(text).ok_or_else(|| {
                    ApiError::validation(
                        "as_of_effective must be an RFC 3339 time, e.g. 2026-10-31T23:59:59Z",
                        "as_of_effective",
                    )
                })
            })
            .transpose()
    }
}

/// Books by effective time E as known at position N, without summing the history.
///
/// Nearly every leg takes effect when it is recorded, and the log's time never runs backwards,
/// so those taking effect by E are exactly those up to `split`, the last position recorded at or
/// before E (at most N): their sum is the running total the entry at `split` already holds. Only
/// dated legs (a stored `effective_at`, in a small partial index) can fall on the other side:
/// add those after `split` (up to N) that take effect by E, subtract those up to `split` that
/// take effect after it.
pub(crate) struct Effective {
    /// E, in microseconds.
    pub at: i64,
    /// N: the last position known.
    pub known: i64,
    pub split: i64,
}

impl Effective {
    pub(crate) async fn new(pool: &ReadPool, at: i64, known: i64) -> Result<Self, ApiError> {
        let split = position_at(pool, at, known).await.map_err(|e| db_error(&e))?;
        Ok(Self { at, known, split })
    }

    /// E as the answers spell it.
    pub(crate) fn as_of(&self) -> String {
        partida_eventstore::format_timestamp(partida_eventstore::micros_to_datetime(self.at))
    }

    /// Every account's line opened by N (only `account`'s, when given), by asset and id: its
    /// running totals at `split`, plus the dated legs' corrections (negative for those taken out).
    pub(crate) async fn lines(
        &self,
        pool: &ReadPool,
        schema: &str,
        account: Option<&str>,
    ) -> Result<Vec<Line>, ApiError> {
        // Separate statements with and without the account, so each is planned for its filter.
        let (only_entries, only_accounts) = match account {
            Some(_) => ("AND account_id = $4", "AND a.id = $4"),
            None => ("", ""),
        };
        let sql = format!(
            "WITH corrections AS ( \
                 SELECT account_id, \
                        coalesce(sum(CASE WHEN side = 'debit' THEN sign * amount END), 0)::int8 AS debits, \
                        coalesce(sum(CASE WHEN side = 'credit' THEN sign * amount END), 0)::int8 AS credits \
                   FROM (SELECT account_id, side, amount, CASE WHEN position > $1 THEN 1 ELSE -1 END AS sign \
                           FROM {schema}.entries \
                          WHERE effective_at IS NOT NULL AND position <= $2 {only_entries} \
                            AND ((position > $1 AND effective_at <= $3) \
                                 OR (position <= $1 AND effective_at > $3))) d \
                  GROUP BY account_id) \
             SELECT a.id, a.asset, a.normal_side, t.debits, t.credits, \
                    CASE a.normal_side WHEN 'debit' THEN t.debits - t.credits \
                                       ELSE t.credits - t.debits END AS balance \
               FROM {schema}.accounts a \
               LEFT JOIN LATERAL (SELECT debits, credits FROM {schema}.entries e \
                                   WHERE e.account_id = a.id AND e.position <= $1 \
                                   ORDER BY e.position DESC, e.seq DESC LIMIT 1) e ON true \
               LEFT JOIN corrections c ON c.account_id = a.id \
              CROSS JOIN LATERAL (SELECT coalesce(e.debits, 0) + coalesce(c.debits, 0) AS debits, \
                                         coalesce(e.credits, 0) + coalesce(c.credits, 0) AS credits) t \
              WHERE a.opened_position <= $2 {only_accounts} \
              ORDER BY a.asset, a.id"
        );
        let query = sqlx::query_as(&sql)
            .bind(self.split)
            .bind(self.known)
            .bind(partida_eventstore::micros_to_datetime(self.at));
        match account {
            Some(account) => query.bind(account).fetch_all(pool).await,
            None => query.fetch_all(pool).await,
        }
        .map_err(|e| db_error(&e))
    }
}

/// One account's line in the trial balance.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = TrialBalanceLine)]
pub(crate) struct Line {
    #[schema(value_type = openapi::AccountId)]
    id: String,
    #[serde(skip)]
    asset: String,
    /// `debit` or `credit`.
    #[schema(pattern = "^(debit|credit)$")]
    normal_side: String,
    debits: i64,
    credits: i64,
    balance: i64,
}

impl Line {
    /// Debits, credits and the balance.
    pub(crate) fn totals(&self) -> (i64, i64, i64) {
        (self.debits, self.credits, self.balance)
    }
}

/// The books as of a position.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrialBalance {
    at_position: i64,
    /// Present when the books are drawn up by effective time: only legs taking effect by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::Timestamp>)]
    as_of_effective: Option<String>,
    assets: Vec<AssetBooks>,
}

/// One asset's accounts and totals; double entry means `debits == credits` (`balanced`).
#[derive(Serialize, ToSchema)]
pub(crate) struct AssetBooks {
    #[schema(value_type = openapi::AssetCode)]
    asset: String,
    scale: i16,
    debits: i64,
    credits: i64,
    balanced: bool,
    accounts: Vec<Line>,
}

/// Every account's debits, credits and balance as of a point in the log (default: as the
/// projection has applied it), with per-asset totals, which must agree.
#[utoipa::path(
    get,
    path = "/v1/trial-balance",
    operation_id = "getTrialBalance",
    tag = "books",
    params(PointInTime),
    responses((status = 200, body = TrialBalance))
)]
pub(crate) async fn trial_balance(
    State(state): State<AppState>,
    Query(point): Query<PointInTime>,
) -> Result<Json<TrialBalance>, ApiError> {
    let effective_at = point.effective()?;
    let position = match point.resolve(&state.pool).await? {
        Some(position) => position,
        None => state.model.reached().checkpoint,
    };
    // The books as of N are final only once the projection has passed N.
    MinPosition(Some(position)).wait(&state, Source::Projection).await?;
    let schema = state.model.schema();
    let effective = match effective_at {
        Some(at) => Some(Effective::new(&state.pool, at, position).await?),
        None => None,
    };
    let lines: Vec<Line> = match &effective {
        None => {
            let sql = format!(
                "SELECT a.id, a.asset, a.normal_side, coalesce(e.debits, 0) AS debits, \
                        coalesce(e.credits, 0) AS credits, coalesce(e.balance, 0) AS balance \
                   FROM {schema}.accounts a \
                   LEFT JOIN LATERAL (SELECT debits, credits, balance FROM {schema}.entries e \
                                       WHERE e.account_id = a.id AND e.position <= $1 \
                                       ORDER BY e.position DESC, e.seq DESC LIMIT 1) e ON true \
                  WHERE a.opened_position <= $1 \
                  ORDER BY a.asset, a.id"
            );
            sqlx::query_as(&sql)
                .bind(position)
                .fetch_all(&state.pool)
                .await
                .map_err(|e| db_error(&e))?
        }
        Some(effective) => effective.lines(&state.pool, &schema, None).await?,
    };
    let scales: Vec<(String, i16)> = sqlx::query_as(&format!(
        "SELECT code, scale FROM {schema}.assets WHERE position <= $1 ORDER BY code"
    ))
    .bind(position)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| db_error(&e))?;
    let mut lines = lines;
    let assets: Vec<AssetBooks> = scales
        .into_iter()
        .map(|(code, scale)| {
            let accounts: Vec<Line>;
            (accounts, lines) = std::mem::take(&mut lines)
                .into_iter()
                .partition(|line| line.asset == code);
            let debits: i128 = accounts.iter().map(|l| i128::from(l.debits)).sum();
            let credits: i128 = accounts.iter().map(|l| i128::from(l.credits)).sum();
            AssetBooks {
                asset: code,
                scale,
                // Bounded by what was posted in the asset, an i64.
                debits: i64::try_from(debits).unwrap_or(i64::MAX),
                credits: i64::try_from(credits).unwrap_or(i64::MAX),
                balanced: debits == credits,
                accounts,
            }
        })
        .collect();
    Ok(Json(TrialBalance {
        at_position: position,
        as_of_effective: effective.as_ref().map(Effective::as_of),
        assets,
    }))
}

/// The last position recorded at or before the RFC 3339 time `text`; 400 when it is no time.
async fn position_at_time(pool: &ReadPool, text: &str) -> Result<i64, ApiError> {
    let micros = partida_eventstore::parse_timestamp(text).ok_or_else(|| {
        ApiError::validation("at_time must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z", "at_time")
    })?;
    let head = partida_eventstore::head(pool).await.map_err(|e| db_error(&e))?;
    position_at(pool, micros, head).await.map_err(|e| db_error(&e))
}

/// The last position up to `last` recorded at or before `micros` (0 when the log starts later).
async fn position_at(pool: &ReadPool, micros: i64, last: i64) -> Result<i64, sqlx::Error> {
    let at = partida_eventstore::micros_to_datetime(micros);
    // Invariant: every position <= low is at or before `at`; every position > high is after it
    // (or past `last`).
    let (mut low, mut high) = (0_i64, last);
    while low < high {
        let middle = low + (high - low + 1) / 2;
        let before: bool = sqlx::query_scalar("SELECT recorded_at <= $2 FROM events WHERE position = $1")
            .bind(middle)
            .bind(at)
            .fetch_one(pool)
            .await?;
        if before {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}
