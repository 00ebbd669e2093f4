//! Reading the log back: the records every reader (projector, query-api, auditors) shares.

use std::borrow::Cow;

use ledger::log::{Hash, RecordFields};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgExecutor, Row, postgres::PgRow};
use uuid::Uuid;

use crate::time::{datetime_to_micros, format_timestamp, parse_timestamp};

/// One stored event with every hashed field, as it is served and exported (and read back from
/// an export by auditors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "wire::StoredEventWire")]
#[schema(as = Event)]
pub struct StoredEvent {
    /// The event's place in the log: 1, 2, 3, ... without gaps.
    #[schema(minimum = 1)]
    pub position: i64,
    #[schema(value_type = String, format = "uuid")]
    pub event_id: Uuid,
    /// `asset:{code}`, `account:{id}` or `transfer:{id}`.
    #[schema(example = "transfer:order-1042")]
    pub stream_id: String,
    /// The event's place in its stream: 1, 2, 3, ...
    #[schema(minimum = 1)]
    pub stream_version: i64,
    /// E.g. `TransferPosted`; docs/LOG-FORMAT.md lists every type and its `data`.
    #[schema(example = "TransferPosted")]
    pub event_type: String,
    pub schema_version: i32,
    /// The event's payload; its shape depends on `event_type`.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who and what caused the event: `actor`, `credential`, `request_id`, `correlation_id`, ...
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Microseconds since the Unix epoch.
    #[serde(skip)]
    pub recorded_at_micros: i64,
    /// RFC 3339, UTC, six fractional digits.
    #[schema(format = DateTime)]
    pub recorded_at: String,
    /// The previous event's `hash` (zeros for position 1).
    #[serde(serialize_with = "hex_hash::serialize")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: Hash,
    /// SHA-256 over `prev_hash` and this event's canonical fields (docs/LOG-FORMAT.md).
    #[serde(serialize_with = "hex_hash::serialize")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub hash: Hash,
}

mod hex_hash {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }
}

/// The exported JSON shape, checked on the way in: the time must carry whole microseconds and
/// the hashes 32 bytes of hex.
pub(crate) mod wire {
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde_json::Value;
    use serde_json::value::RawValue;
    use uuid::Uuid;

    use super::{StoredEvent, parse_timestamp};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct StoredEventWire {
        position: i64,
        event_id: Uuid,
        stream_id: String,
        stream_version: i64,
        event_type: String,
        schema_version: i32,
        data: Value,
        metadata: Value,
        recorded_at: String,
        prev_hash: String,
        hash: String,
    }

    impl TryFrom<StoredEventWire> for StoredEvent {
        type Error = String;

        fn try_from(wire: StoredEventWire) -> Result<Self, String> {
            Ok(Self {
                position: wire.position,
                event_id: wire.event_id,
                recorded_at_micros: micros(&wire.recorded_at)?,
                prev_hash: hash("prev_hash", &wire.prev_hash)?,
                hash: hash("hash", &wire.hash)?,
                stream_id: wire.stream_id,
                stream_version: wire.stream_version,
                event_type: wire.event_type,
                schema_version: wire.schema_version,
                data: wire.data,
                metadata: wire.metadata,
                recorded_at: wire.recorded_at,
            })
        }
    }

    /// The same record borrowed from its line: strings without escapes and the JSON fields
    /// are not copied.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RecordLine<'a> {
        pub position: i64,
        pub event_id: Uuid,
        #[serde(borrow)]
        pub stream_id: Cow<'a, str>,
        pub stream_version: i64,
        #[serde(borrow)]
        pub event_type: Cow<'a, str>,
        pub schema_version: i32,
        #[serde(borrow)]
        pub data: &'a RawValue,
        #[serde(borrow)]
        pub metadata: &'a RawValue,
        #[serde(borrow)]
        pub recorded_at: Cow<'a, str>,
        #[serde(borrow)]
        pub prev_hash: Cow<'a, str>,
        #[serde(borrow)]
        pub hash: Cow<'a, str>,
    }

    /// 64 hex digits as 32 bytes. By a table rather than with `hex`: an auditor's replay reads
    /// two per event, and a branch-free loop is several times faster.
    pub fn hash(name: &str, text: &str) -> Result<[u8; 32], String> {
        let bad = || format!("{name} is not 64 hex digits");
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        // Every invalid digit maps to 0xff, so one test of the high bits at the end finds any.
        let mut invalid = 0;
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
            invalid |= high | low;
            *byte = (high << 4) | (low & 0x0f);
        }
        if invalid & 0xf0 != 0 {
            return Err(bad());
        }
        Ok(bytes)
    }

    /// Each byte's value as a hex digit, or 0xff.
    static NIBBLES: [u8; 256] = {
        let mut table = [0xffu8; 256];
        let mut digit = 0;
        while digit < 256 {
            table[digit] = match digit as u8 {
                b @ b'0'..=b'9' => b - b'0',
                b @ b'a'..=b'f' => b - b'a' + 10,
                b @ b'A'..=b'F' => b - b'A' + 10,
                _ => 0xff,
            };
            digit += 1;
        }
        table
    };

    pub fn micros(recorded_at: &str) -> Result<i64, String> {
        parse_timestamp(recorded_at)
            .ok_or_else(|| format!("recorded_at {recorded_at:?} is not an RFC 3339 time in microseconds"))
    }
}

/// One exported record read straight from its NDJSON line (what [`StoredEvent`] deserializes
/// from, with the same checks), for verifiers that hash and decode millions of them: `data` and
/// `metadata` stay JSON text, so canonical text is hashed as it is and the event is decoded
/// without an intermediate `Value`.
pub struct RecordLine<'a> {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Cow<'a, str>,
    pub stream_version: i64,
    pub event_type: Cow<'a, str>,
    pub schema_version: i32,
    /// JSON text, as written in the line.
    pub data: &'a str,
    pub metadata: &'a str,
    /// `data` and `metadata` are known to be in canonical form already (then their text is what
    /// is hashed); `false` when not checked.
    pub canonical: bool,
    pub recorded_at: Cow<'a, str>,
    pub recorded_at_micros: i64,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl<'a> RecordLine<'a> {
    /// Reads one line of an export; the message says what is wrong with it.
    pub fn parse(line: &'a str) -> Result<Self, String> {
        crate::export_line::parse(line).map_or_else(|| Self::parse_general(line), Ok)
    }

    /// [`parse`](Self::parse) by serde, for any JSON form of a record.
    pub(crate) fn parse_general(line: &'a str) -> Result<Self, String> {
        let wire: wire::RecordLine<'a> = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Ok(Self {
            recorded_at_micros: wire::micros(&wire.recorded_at)?,
            prev_hash: wire::hash("prev_hash", &wire.prev_hash)?,
            hash: wire::hash("hash", &wire.hash)?,
            position: wire.position,
            event_id: wire.event_id,
            stream_id: wire.stream_id,
            stream_version: wire.stream_version,
            event_type: wire.event_type,
            schema_version: wire.schema_version,
            data: wire.data.get(),
            metadata: wire.metadata.get(),
            canonical: false,
            recorded_at: wire.recorded_at,
        })
    }
}

impl StoredEvent {
    pub fn fields(&self) -> RecordFields<'_> {
        RecordFields {
            position: self.position,
            event_id: *self.event_id.as_bytes(),
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            data: (&self.data).into(),
            metadata: (&self.metadata).into(),
            recorded_at: self.recorded_at_micros,
            prev_hash: &self.prev_hash,
        }
    }

    /// Whether the stored hash is the hash of the stored fields.
    pub fn hash_matches(&self) -> bool {
        self.fields().hash() == self.hash
    }

    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let recorded_at = row.try_get("recorded_at")?;
        Ok(Self {
            position: row.try_get("position")?,
            event_id: row.try_get("event_id")?,
            stream_id: row.try_get("stream_id")?,
            stream_version: row.try_get("stream_version")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            data: row.try_get("data")?,
            metadata: row.try_get("metadata")?,
            recorded_at_micros: datetime_to_micros(recorded_at),
            recorded_at: format_timestamp(recorded_at),
            prev_hash: to_hash(row.try_get("prev_hash")?)?,
            hash: to_hash(row.try_get("hash")?)?,
        })
    }
}

fn to_hash(bytes: Vec<u8>) -> Result<Hash, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored hash is not 32 bytes".into()))
}

// Page sizes are written into the statements, not bound: for `LIMIT $n` a generic plan assumes a
// tenth of the rows and costs more than the custom plans, so PostgreSQL would plan the statement
// again at every execution. With the number in the text, each page size is a statement of its own
// whose generic plan takes over after five executions.

const COLUMNS: &str = "position, event_id, stream_id, stream_version, event_type, schema_version, \
                       data, metadata, recorded_at, prev_hash, hash";

/// Up to `limit` events with positions after `after`, in order.
pub async fn events_after(db: impl PgExecutor<'_>, after: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT {limit}");
    let rows = sqlx::query(&sql).bind(after).fetch_all(db).await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// An event as a projection reads it: its place, its time and its payload as JSON text. None of
/// the chain's fields, which a projection does not check, and no `Value` built for the payload:
/// the reader decodes it straight into its domain event ([`ledger::Event::decode_text`]).
#[derive(Debug, Clone)]
pub struct Payload {
    pub position: i64,
    pub recorded_at: time::OffsetDateTime,
    pub event_type: String,
    pub schema_version: i32,
    pub data: String,
}

/// The payloads of up to `limit` events with positions after `after`, in order.
pub async fn payloads_after(db: impl PgExecutor<'_>, after: i64, limit: i64) -> Result<Vec<Payload>, sqlx::Error> {
    let sql = format!(
        "SELECT position, recorded_at, event_type, schema_version, data::text FROM events \
           WHERE position > $1 ORDER BY position LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(after).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok(Payload {
                position: row.try_get(0)?,
                recorded_at: row.try_get(1)?,
                event_type: row.try_get(2)?,
                schema_version: row.try_get(3)?,
                data: row.try_get(4)?,
            })
        })
        .collect()
}

/// Which part of the log a page shows: past a cursor in either direction, optionally of one type.
#[derive(Debug, Clone, Copy)]
pub struct LogPage<'a> {
    /// The last position seen; `None` starts at the beginning (or the end, descending).
    pub after: Option<i64>,
    pub descending: bool,
    pub event_type: Option<&'a str>,
    pub limit: i64,
}

/// One page of the log, by position.
pub async fn events_page(db: impl PgExecutor<'_>, page: LogPage<'_>) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let (compare, order, start) = if page.descending {
        ("<", "DESC", i64::MAX)
    } else {
        (">", "ASC", 0)
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE position {compare} $1 AND ($2::text IS NULL OR event_type = $2) \
         ORDER BY position {order} LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(page.after.unwrap_or(start))
        .bind(page.event_type)
        .bind(page.limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// The events of one stream, by version, from `after_version` on.
pub async fn stream(
    db: impl PgExecutor<'_>,
    stream_id: &str,
    after_version: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version \
         LIMIT {limit}"
    );
    let rows = sqlx::query(&sql)
        .bind(stream_id)
        .bind(after_version)
        .fetch_all(db)
        .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// The last position written (0 for an empty log).
pub async fn head(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(db)
        .await
}

/// Checks a run of the log from position 1: dense positions, every hash recomputed, every link,
/// time never running backwards. Returns the first problem, naming its position.
pub fn verify_chain(events: &[StoredEvent]) -> Result<(), String> {
    let mut check = ledger::log::ChainCheck::from_genesis();
    for event in events {
        check.check(&event.fields(), &event.hash).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wire::hash;

    #[test]
    fn hashes_read_from_hex_as_the_hex_crate_reads_them() {
        let digits: String = (0u8..32).map(|i| format!("{:02x}", i.wrapping_mul(37))).collect();
        let mut expected = [0u8; 32];
        hex::decode_to_slice(&digits, &mut expected).unwrap_or_default();
        assert_eq!(hash("hash", &digits), Ok(expected));
        assert_eq!(hash("hash", &digits.to_uppercase()), Ok(expected));
        for bad in [
            &digits[..62],
            "",
            &format!("{}g0", &digits[..62]),
            &format!("{digits}00"),
        ] {
            assert_eq!(
                hash("prev_hash", bad),
                Err("prev_hash is not 64 hex digits".to_owned()),
                "{bad}"
            );
        }
        for ascii in (0u8..128).filter(|b| !b.is_ascii_hexdigit()) {
            let bad = format!("{}{}", char::from(ascii), &digits[1..]);
            assert!(hash("hash", &bad).is_err(), "{ascii:#x}");
        }
    }
}
