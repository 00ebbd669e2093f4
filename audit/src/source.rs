//! Where the log comes from: an export file, a running query-api (its export endpoint), or the
//! database itself. Each yields the records in order, one at a time or a block at a time, in
//! constant memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use partida_eventstore::StoredEvent;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Executor};

use crate::api::QueryApi;
use crate::lines::{Input, LineReader, Text};

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

/// Records as a source holds them, not yet read: see [`Source::next_block`].
pub enum Block {
    /// Whole lines (the last may lack its `\n`), the first of them line `first_line` of `what`.
    Lines {
        what: String,
        first_line: u64,
        text: Text,
    },
    Rows(Vec<StoredEvent>),
}

impl Block {
    /// Reads every record of the block into `records` (empty) with `from_line` or `from_row`,
    /// in order, skipping blank lines; the first line that is not a record is the error.
    pub fn read_into<T>(
        self,
        mut records: Vec<T>,
        from_line: impl Fn(&str) -> Result<T, String>,
        from_row: impl Fn(StoredEvent) -> T,
    ) -> Result<Vec<T>, SourceError> {
        let (what, first_line, text) = match self {
            Self::Rows(rows) => {
                records.extend(rows.into_iter().map(from_row));
                return Ok(records);
            }
            Self::Lines { what, first_line, text } => (what, first_line, text),
        };
        records.reserve(text.len() / 512);
        let mut start = 0;
        for (line, end) in (first_line..).zip(memchr::memchr_iter(b'\n', &text).chain([text.len()])) {
            let bytes = &text[start..end];
            start = end + 1;
            let bad = |message| SourceError::BadLine {
                what: what.clone(),
                line,
                message,
            };
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".to_owned()))?;
            if text.trim().is_empty() {
                continue;
            }
            records.push(from_line(text).map_err(|e| bad(format!("not a log record: {e}")))?);
        }
        Ok(records)
    }
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

impl Source {
    pub async fn file(path: &Path) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SourceError::Unreadable(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self::Lines {
            what: display(path),
            lines: LineReader::new(Input::File(Some(file.into_std().await))),
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
            lines: LineReader::new(Input::Http(response.bytes_stream().boxed())),
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
                return serde_json::from_str(text).map(Some).map_err(|e| SourceError::BadLine {
                    what: what.clone(),
                    line: *line,
                    message: format!("not a log record: {e}"),
                });
            },
            Self::Database { .. } => Ok(self.rows().await?.and_then(VecDeque::pop_front)),
        }
    }

    /// The next run of records, in the form the source holds them, to be read anywhere (on
    /// several threads at once, in order): whole lines of about 256 KiB, or a page of rows.
    pub async fn next_block(&mut self) -> Result<Option<Block>, SourceError> {
        match self {
            Self::Lines { what, lines, line } => {
                let first_line = *line + 1;
                let text = lines.next_lines().await.map_err(|message| SourceError::BadLine {
                    what: what.clone(),
                    line: first_line,
                    message,
                })?;
                Ok(text.map(|text| {
                    *line += memchr::memchr_iter(b'\n', &text).count() as u64;
                    Block::Lines {
                        what: what.clone(),
                        first_line,
                        text,
                    }
                }))
            }
            Self::Database { .. } => Ok(self
                .rows()
                .await?
                .map(std::mem::take)
                .filter(|rows| !rows.is_empty())
                .map(|rows| Block::Rows(rows.into()))),
        }
    }

    /// The rows read of the events table and not yet taken, after reading its next page if
    /// none were left (empty at its end); `None` for a source of lines.
    async fn rows(&mut self) -> Result<Option<&mut VecDeque<StoredEvent>>, SourceError> {
        let Self::Database {
            connection,
            after,
            buffered,
            done,
        } = self
        else {
            return Ok(None);
        };
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
        Ok(Some(buffered))
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

fn display(path: &Path) -> String {
    PathBuf::from(path).display().to_string()
}
