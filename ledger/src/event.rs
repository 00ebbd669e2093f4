//! Events: the facts the log records. Their JSON shape is part of the log format; change it only
//! with a new schema version.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::{Metadata, OpenAccount, Posting};
use crate::ids::{AccountId, AssetCode, IdError, Scale, TransferId};

/// The schema version every event is written with today.
pub const SCHEMA_VERSION: i32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRegistered {
    pub code: AssetCode,
    pub scale: Scale,
}

/// An account was opened; it records the normalized open command.
pub type AccountOpened = OpenAccount;

/// An account was frozen, unfrozen or closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountLifecycleEvent {
    pub id: AccountId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferPosted {
    pub id: TransferId,
    pub postings: Vec<Posting>,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<TransferId>,
}

/// A hold: version 1 of its transfer's stream. Its amounts are reserved (they count against the
/// accounts' limits) until version 2 of the stream resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferPending {
    pub id: TransferId,
    pub postings: Vec<Posting>,
    pub metadata: Metadata,
    /// As the command gave it (so a retry is recognized as the same hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// The hold's recorded time plus its timeout, in microseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_micros: Option<i64>,
}

/// A hold posted: the amounts moved, leg by leg in the hold's order, each at most what was held;
/// legs posted at zero are left out. The rest of the reservation is released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingPosted {
    pub id: TransferId,
    pub postings: Vec<Posting>,
}

/// A hold released without posting: voided by a client, or expired at its timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingReleased {
    pub id: TransferId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    AssetRegistered(AssetRegistered),
    AccountOpened(AccountOpened),
    AccountFrozen(AccountLifecycleEvent),
    AccountUnfrozen(AccountLifecycleEvent),
    AccountClosed(AccountLifecycleEvent),
    TransferPosted(TransferPosted),
    TransferPending(TransferPending),
    PendingPosted(PendingPosted),
    PendingVoided(PendingReleased),
    PendingExpired(PendingReleased),
}

/// Why a stored event could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unsupported schema version {0}")]
    UnsupportedSchema(i32),
    #[error("malformed {event_type} data: {source}")]
    Malformed {
        event_type: String,
        source: serde_json::Error,
    },
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::AssetRegistered(_) => "AssetRegistered",
            Self::AccountOpened(_) => "AccountOpened",
            Self::AccountFrozen(_) => "AccountFrozen",
            Self::AccountUnfrozen(_) => "AccountUnfrozen",
            Self::AccountClosed(_) => "AccountClosed",
            Self::TransferPosted(_) => "TransferPosted",
            Self::TransferPending(_) => "TransferPending",
            Self::PendingPosted(_) => "PendingPosted",
            Self::PendingVoided(_) => "PendingVoided",
            Self::PendingExpired(_) => "PendingExpired",
        }
    }

    /// The stream the event belongs to; stream versions count events per stream.
    pub fn stream_id(&self) -> StreamId {
        match self {
            Self::AssetRegistered(e) => StreamId::Asset(e.code.clone()),
            Self::AccountOpened(e) => StreamId::Account(e.id.clone()),
            Self::AccountFrozen(e) | Self::AccountUnfrozen(e) | Self::AccountClosed(e) => {
                StreamId::Account(e.id.clone())
            }
            Self::TransferPosted(e) => StreamId::Transfer(e.id.clone()),
            Self::TransferPending(e) => StreamId::Transfer(e.id.clone()),
            Self::PendingPosted(e) => StreamId::Transfer(e.id.clone()),
            Self::PendingVoided(e) | Self::PendingExpired(e) => StreamId::Transfer(e.id.clone()),
        }
    }

    /// The event's data as stored in the log.
    pub fn data(&self) -> Value {
        let encoded = match self {
            Self::AssetRegistered(e) => serde_json::to_value(e),
            Self::AccountOpened(e) => serde_json::to_value(e),
            Self::AccountFrozen(e) | Self::AccountUnfrozen(e) | Self::AccountClosed(e) => serde_json::to_value(e),
            Self::TransferPosted(e) => serde_json::to_value(e),
            Self::TransferPending(e) => serde_json::to_value(e),
            Self::PendingPosted(e) => serde_json::to_value(e),
            Self::PendingVoided(e) | Self::PendingExpired(e) => serde_json::to_value(e),
        };
        // These types hold only strings, integers, booleans and JSON objects: they always encode.
        encoded.unwrap_or(Value::Null)
    }

    /// Reads an event back from its stored type, schema version and data.
    pub fn decode(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, DecodeError> {
        Self::decode_from(event_type, schema_version, data)
    }

    /// [`decode`](Self::decode) from the data's JSON text, without building a `Value` first.
    pub fn decode_text(event_type: &str, schema_version: i32, data: &str) -> Result<Self, DecodeError> {
        let mut text = serde_json::Deserializer::from_str(data);
        let event = Self::decode_from(event_type, schema_version, &mut text)?;
        text.end().map_err(|source| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            source,
        })?;
        Ok(event)
    }

    fn decode_from<'de, D>(event_type: &str, schema_version: i32, data: D) -> Result<Self, DecodeError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        if schema_version != SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedSchema(schema_version));
        }
        let malformed = |source| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            source,
        };
        Ok(match event_type {
            "AssetRegistered" => Self::AssetRegistered(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountOpened" => Self::AccountOpened(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountFrozen" => Self::AccountFrozen(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountUnfrozen" => Self::AccountUnfrozen(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountClosed" => Self::AccountClosed(Deserialize::deserialize(data).map_err(malformed)?),
            "TransferPosted" => Self::TransferPosted(Deserialize::deserialize(data).map_err(malformed)?),
            "TransferPending" => Self::TransferPending(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingPosted" => Self::PendingPosted(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingVoided" => Self::PendingVoided(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingExpired" => Self::PendingExpired(Deserialize::deserialize(data).map_err(malformed)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// A stream id as stored: `asset:{code}`, `account:{id}` or `transfer:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamId {
    Asset(AssetCode),
    Account(AccountId),
    Transfer(TransferId),
}

impl StreamId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        match value.split_once(':') {
            Some(("asset", code)) => AssetCode::parse(code).map(Self::Asset),
            Some(("account", id)) => AccountId::parse(id).map(Self::Account),
            Some(("transfer", id)) => TransferId::parse(id).map(Self::Transfer),
            _ => Err(IdError::BadId {
                max: AccountId::MAX_LEN,
            }),
        }
    }
}

impl StreamId {
    /// Whether `text` is this id as stored (what [`Display`](fmt::Display) writes), compared
    /// without writing it.
    pub fn is(&self, text: &str) -> bool {
        let (prefix, id) = match self {
            Self::Asset(code) => ("asset:", code.as_str()),
            Self::Account(id) => ("account:", id.as_str()),
            Self::Transfer(id) => ("transfer:", id.as_str()),
        };
        text.strip_prefix(prefix) == Some(id)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Asset(code) => write!(f, "asset:{code}"),
            Self::Account(id) => write!(f, "account:{id}"),
            Self::Transfer(id) => write!(f, "transfer:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Amount;

    #[test]
    fn events_round_trip_through_their_stored_form() -> Result<(), Box<dyn std::error::Error>> {
        let event = Event::TransferPosted(TransferPosted {
            id: TransferId::parse("t-1")?,
            postings: vec![Posting {
                debit: AccountId::parse("a")?,
                credit: AccountId::parse("b")?,
                amount: Amount::new(5)?,
            }],
            metadata: Metadata::new(),
            reverses: None,
        });
        let back = Event::decode(event.event_type(), SCHEMA_VERSION, &event.data())?;
        assert_eq!(back, event);
        assert_eq!(event.stream_id().to_string(), "transfer:t-1");
        assert_eq!(StreamId::parse("transfer:t-1")?, event.stream_id());
        assert!(event.stream_id().is("transfer:t-1"));
        assert!(!event.stream_id().is("transfer:t-12") && !event.stream_id().is("account:t-1"));
        let text = serde_json::to_string(&event.data())?;
        assert_eq!(Event::decode_text(event.event_type(), SCHEMA_VERSION, &text)?, event);
        Ok(())
    }

    #[test]
    fn unknown_types_and_versions_are_refused() {
        assert!(matches!(
            Event::decode("Nope", 1, &Value::Null),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            Event::decode("AccountClosed", 2, &Value::Null),
            Err(DecodeError::UnsupportedSchema(2))
        ));
    }
}
