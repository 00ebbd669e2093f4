//! Where the log comes from: an export file, a running query-api (its export endpoint), or the
//! database itself. Each yields the records in order, one at a time, in constant memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use partida_eventstore::StoredEvent;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Executor};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

use crate::api::QueryApi;

/// Events read per database query.
const DB_PAGE: i64 = 5_000;

/// The input cannot be used at all (as opposed to a log that fails verification).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Unreadable(String),
    #[error("{what} line {line}: {message}")]
    BadLine { what: String, line: u64, message: String },
}

pub enum Source {
    /// NDJSON lines from a file or from query-api's export.
    Lines { what: String, lines: LineReader, line: u64 },
    /// Pages of the `events` table, all read in one repeatable-read snapshot.
    Database {
        connection: Box<PgConnection>,
        after: i64,
        buffered: VecDeque<StoredEvent>,
        done: bool,
    },
}

pub enum LineReader {
    File(Lines<BufReader<tokio::fs::File>>),
    Http {
        body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        pending: Vec<u8>,
        done: bool,
    },
}

impl Source {
    pub async fn file(path: &Path) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SourceError::Unreadable(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self::Lines {
            what: display(path),
            lines: LineReader::File(BufReader::with_capacity(1 << 20, file).lines()),
            line: 0,
        })
    }

    /// `GET {url}/v1/audit/export`, streamed.
    pub async fn query_api(api: &QueryApi) -> Result<Self, SourceError> {
        let export = api.url("/v1/audit/export");
        let response = api
            .http()
            .get(&export)
            .send()
            .await
            .map_err(|e| SourceError::Unreadable(format!("cannot reach {export}: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(SourceError::Unreadable(format!("{export} answered {status}: {body}")));
        }
        Ok(Self::Lines {
            what: export,
            lines: LineReader::Http {
                body: response.bytes_stream().boxed(),
                pending: Vec::new(),
                done: false,
            },
            line: 0,
        })
    }

    /// The `events` table, read in one read-only, repeatable-read transaction: the log and the
    /// write-side tables are then compared in the same snapshot.
    pub async fn database(url: &str) -> Result<Self, SourceError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| SourceError::Unreadable(format!("bad database URL: {e}")))?;
        let mut connection = options
            .application_name("partida-audit")
            .connect()
            .await
            .map_err(|e| SourceError::Unreadable(format!("cannot connect to the database: {e}")))?;
        connection
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| SourceError::Unreadable(format!("cannot start a snapshot: {e}")))?;
        Ok(Self::Database {
            connection: Box::new(connection),
            after: 0,
            buffered: VecDeque::new(),
            done: false,
        })
    }

    /// The next record, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<StoredEvent>, SourceError> {
        self.next_as(
            |line| serde_json::from_str(line).map_err(|e| e.to_string()),
            |record| record,
        )
        .await
    }

    /// The next record as `T`: read from its line by `from_line` (whose error says what is
    /// wrong with the line), or made from a database row by `from_row`.
    pub async fn next_as<T>(
        &mut self,
        from_line: impl FnOnce(&str) -> Result<T, String>,
        from_row: impl FnOnce(StoredEvent) -> T,
    ) -> Result<Option<T>, SourceError> {
        match self {
            Self::Lines { what, lines, line } => loop {
                let Some(text) = lines.next_line().await.map_err(|message| SourceError::BadLine {
                    what: what.clone(),
                    line: *line + 1,
                    message,
                })?
                else {
                    return Ok(None);
                };
                *line += 1;
                if text.trim().is_empty() {
                    continue;
                }
                return from_line(&text).map(Some).map_err(|e| SourceError::BadLine {
                    what: what.clone(),
                    line: *line,
                    message: format!("not a log record: {e}"),
                });
            },
            Self::Database {
                connection,
                after,
                buffered,
                done,
            } => {
                if buffered.is_empty() && !*done {
                    let page = partida_eventstore::events_after(&mut **connection, *after, DB_PAGE)
                        .await
                        .map_err(|e| SourceError::Unreadable(format!("reading the events table: {e}")))?;
                    *done = (page.len() as i64) < DB_PAGE;
                    if let Some(last) = page.last() {
                        *after = last.position;
                    }
                    buffered.extend(page);
                }
                Ok(buffered.pop_front().map(from_row))
            }
        }
    }

    /// The database connection, when reading one (for the write-side comparison).
    pub fn connection(&mut self) -> Option<&mut PgConnection> {
        match self {
            Self::Database { connection, .. } => Some(connection),
            Self::Lines { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Lines { what, .. } => what.clone(),
            Self::Database { .. } => "database (events table)".to_owned(),
        }
    }
}

impl LineReader {
    async fn next_line(&mut self) -> Result<Option<String>, String> {
        match self {
            Self::File(lines) => lines.next_line().await.map_err(|e| e.to_string()),
            Self::Http { body, pending, done } => loop {
                if let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    return String::from_utf8(line)
                        .map(|l| Some(l.trim_end().to_owned()))
                        .map_err(|_| "not UTF-8".to_owned());
                }
                if *done {
                    if pending.is_empty() {
                        return Ok(None);
                    }
                    let rest = std::mem::take(pending);
                    return String::from_utf8(rest).map(Some).map_err(|_| "not UTF-8".to_owned());
                }
                match body.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => return Err(format!("the export broke off: {e}")),
                    None => *done = true,
                }
            },
        }
    }
}

fn display(path: &Path) -> String {
    PathBuf::from(path).display().to_string()
}
