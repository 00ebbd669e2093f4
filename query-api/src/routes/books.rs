//! `GET /v1/trial-balance?at_position=N | at_time=T`: every account's debits, credits and balance
//! as of a point in the log, with per-asset totals, which must agree (double entry).
//!
//! A time names the last event recorded at or before it (the log's time never runs backwards,
//! so this is well defined); it is found by bisecting positions, a few index probes. Without
//! either, the books as the projection has applied them.

use axum::Json;
use axum::extract::State;
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::db_error;
use crate::AppState;
use crate::consistency::{MinPosition, Source};

/// `at_position=N` or `at_time=T`: a point in the log, for the books and for one balance.
#[derive(Deserialize)]
pub(crate) struct PointInTime {
    at_position: Option<i64>,
    at_time: Option<String>,
}

impl PointInTime {
    /// The position asked for, `None` for "now"; 400 for both, a negative position or no time.
    pub(crate) async fn resolve(&self, pool: &PgPool) -> Result<Option<i64>, ApiError> {
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
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Line {
    id: String,
    #[serde(skip)]
    asset: String,
    normal_side: String,
    debits: i64,
    credits: i64,
    balance: i64,
}

pub(crate) async fn trial_balance(
    State(state): State<AppState>,
    Query(point): Query<PointInTime>,
) -> Result<Json<Value>, ApiError> {
    let position = match point.resolve(&state.pool).await? {
        Some(position) => position,
        None => state.model.reached().checkpoint,
    };
    // The books as of N are final only once the projection has passed N.
    MinPosition(Some(position)).wait(&state, Source::Projection).await?;
    let schema = state.model.schema();
    let sql = format!(
        "SELECT a.id, a.asset, a.normal_side, coalesce(e.debits, 0) AS debits, coalesce(e.credits, 0) AS credits, \
                coalesce(e.balance, 0) AS balance \
           FROM {schema}.accounts a \
           LEFT JOIN LATERAL (SELECT debits, credits, balance FROM {schema}.entries e \
                               WHERE e.account_id = a.id AND e.position <= $1 \
                               ORDER BY e.position DESC, e.seq DESC LIMIT 1) e ON true \
          WHERE a.opened_position <= $1 \
          ORDER BY a.asset, a.id"
    );
    let lines: Vec<Line> = sqlx::query_as(&sql)
        .bind(position)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    let scales: Vec<(String, i16)> = sqlx::query_as(&format!(
        "SELECT code, scale FROM {schema}.assets WHERE position <= $1 ORDER BY code"
    ))
    .bind(position)
    .fetch_all(&state.pool)
    .await
    .map_err(|e| db_error(&e))?;
    let assets: Vec<Value> = scales
        .into_iter()
        .map(|(code, scale)| {
            let accounts: Vec<&Line> = lines.iter().filter(|line| line.asset == code).collect();
            let debits: i128 = accounts.iter().map(|l| i128::from(l.debits)).sum();
            let credits: i128 = accounts.iter().map(|l| i128::from(l.credits)).sum();
            json!({
                "asset": code,
                "scale": scale,
                // Bounded by what was posted in the asset, an i64.
                "debits": i64::try_from(debits).unwrap_or(i64::MAX),
                "credits": i64::try_from(credits).unwrap_or(i64::MAX),
                "balanced": debits == credits,
                "accounts": accounts,
            })
        })
        .collect();
    Ok(Json(json!({ "at_position": position, "assets": assets })))
}

/// The last position recorded at or before the RFC 3339 time `text`; 400 when it is no time.
async fn position_at_time(pool: &PgPool, text: &str) -> Result<i64, ApiError> {
    let micros = partida_eventstore::parse_timestamp(text).ok_or_else(|| {
        ApiError::validation("at_time must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z", "at_time")
    })?;
    position_at(pool, micros).await.map_err(|e| db_error(&e))
}

/// The last position recorded at or before `micros` (0 when the log starts later).
async fn position_at(pool: &PgPool, micros: i64) -> Result<i64, sqlx::Error> {
    let at = partida_eventstore::micros_to_datetime(micros);
    let head = partida_eventstore::head(pool).await?;
    // Invariant: every position <= low is at or before `at`; every position > high is after it.
    let (mut low, mut high) = (0_i64, head);
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
