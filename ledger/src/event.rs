//! Events: the facts the log records. Their JSON shape is part of the log format; change it only
//! with a new schema version.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::{Metadata, OpenAccount, Posting, SetMetadata, Subject};
use crate::ids::{AccountId, AssetCode, IdError, Scale, SubjectId, TransferId};

/// The schema version of every event type but `TransferPosted`, and of a `TransferPosted` without
/// an effective time. An event is written with the lowest version that can hold it (see
/// [`Event::schema_version`]), so readers older than a version refuse only the events they would
/// misread.
pub const SCHEMA_VERSION: i32 = 1;

/// `TransferPosted` version 2: version 1 with `effective_at_micros`.
pub const TRANSFER_POSTED_V2: i32 = 2;

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

/// A transfer posted: its amounts moved when it was recorded.
///
/// Version 2 adds `effective_at_micros`: when the transfer takes effect for the books, as the
/// command gave it. Absent (always, in version 1) it takes effect at its recorded time, which
/// is the event's, not its data's: readers resolve it with [`TransferPosted::effective_at`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferPosted {
    pub id: TransferId,
    pub postings: Vec<Posting>,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at_micros: Option<i64>,
}

impl TransferPosted {
    /// When the transfer takes effect, given the time its event was recorded.
    pub fn effective_at(&self, recorded_at_micros: i64) -> i64 {
        self.effective_at_micros.unwrap_or(recorded_at_micros)
    }
}

/// `TransferPosted` as version 1 wrote it, before effective times.
#[derive(Deserialize)]
struct TransferPostedV1 {
    id: TransferId,
    postings: Vec<Posting>,
    metadata: Metadata,
    #[serde(default)]
    reverses: Option<TransferId>,
}

impl From<TransferPostedV1> for TransferPosted {
    /// The upcaster: a version 1 transfer takes effect when it was recorded.
    fn from(v1: TransferPostedV1) -> Self {
        Self {
            id: v1.id,
            postings: v1.postings,
            metadata: v1.metadata,
            reverses: v1.reverses,
            effective_at_micros: None,
        }
    }
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

/// A subject's metadata changed by a patch (see [`SetMetadata`]): `metadata` holds the keys set,
/// and the keys removed with `null` values. Readers fold the patches over the metadata the
/// subject was opened with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataSet<Id> {
    pub id: Id,
    pub metadata: Metadata,
}

/// A data subject's personal data erased: its key was destroyed in the same transaction that
/// appended this event, the first and only one of the subject's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDataErased {
    pub subject: SubjectId,
}

impl SetMetadata {
    /// The event recording this change.
    pub fn to_event(&self) -> Event {
        let metadata = self.patch().clone();
        match &self.subject {
            Subject::Account(id) => Event::AccountMetadataSet(MetadataSet {
                id: id.clone(),
                metadata,
            }),
            Subject::Transfer(id) => Event::TransferMetadataSet(MetadataSet {
                id: id.clone(),
                metadata,
            }),
        }
    }
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
    AccountMetadataSet(MetadataSet<AccountId>),
    TransferMetadataSet(MetadataSet<TransferId>),
    PersonalDataErased(PersonalDataErased),
}

/// Why a stored event could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unsupported schema version {version} of {event_type}")]
    UnsupportedSchema { event_type: String, version: i32 },
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
            Self::AccountMetadataSet(_) => "AccountMetadataSet",
            Self::TransferMetadataSet(_) => "TransferMetadataSet",
            Self::PersonalDataErased(_) => "PersonalDataErased",
        }
    }

    /// The schema version the event is written with: the lowest that holds it.
    pub fn schema_version(&self) -> i32 {
        match self {
            Self::TransferPosted(TransferPosted {
                effective_at_micros: Some(_),
                ..
            }) => TRANSFER_POSTED_V2,
            _ => SCHEMA_VERSION,
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
            Self::AccountMetadataSet(e) => StreamId::Account(e.id.clone()),
            Self::TransferMetadataSet(e) => StreamId::Transfer(e.id.clone()),
            Self::PersonalDataErased(e) => StreamId::Subject(e.subject.clone()),
        }
    }

    /// The metadata the event carries, if its type carries any: opened accounts, transfers, holds
    /// and metadata patches.
    pub fn metadata(&self) -> Option<&Metadata> {
        match self {
            Self::AccountOpened(e) => Some(&e.metadata),
            Self::TransferPosted(e) => Some(&e.metadata),
            Self::TransferPending(e) => Some(&e.metadata),
            Self::AccountMetadataSet(e) => Some(&e.metadata),
            Self::TransferMetadataSet(e) => Some(&e.metadata),
            _ => None,
        }
    }

    /// [`metadata`](Self::metadata), to change in place.
    pub fn metadata_mut(&mut self) -> Option<&mut Metadata> {
        match self {
            Self::AccountOpened(e) => Some(&mut e.metadata),
            Self::TransferPosted(e) => Some(&mut e.metadata),
            Self::TransferPending(e) => Some(&mut e.metadata),
            Self::AccountMetadataSet(e) => Some(&mut e.metadata),
            Self::TransferMetadataSet(e) => Some(&mut e.metadata),
            Self::AssetRegistered(_)
            | Self::AccountFrozen(_)
            | Self::AccountUnfrozen(_)
            | Self::AccountClosed(_)
            | Self::PendingPosted(_)
            | Self::PendingVoided(_)
            | Self::PendingExpired(_)
            | Self::PersonalDataErased(_) => None,
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
            Self::AccountMetadataSet(e) => serde_json::to_value(e),
            Self::TransferMetadataSet(e) => serde_json::to_value(e),
            Self::PersonalDataErased(e) => serde_json::to_value(e),
        };
        // These types hold only strings, integers, booleans and JSON objects: they always encode.
        encoded.unwrap_or(Value::Null)
    }

    /// Reads an event back from its stored type, schema version and data, upcasting older
    /// versions to the current shape.
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
        let mut event = Self::read_from(event_type, schema_version, data)?;
        // Decoded events are kept (a replay keeps every transfer's legs): without the room to
        // grow that reading a list leaves (a list of one leg is read into room for four).
        if let Self::TransferPosted(TransferPosted { postings, .. })
        | Self::TransferPending(TransferPending { postings, .. })
        | Self::PendingPosted(PendingPosted { postings, .. }) = &mut event
        {
            postings.shrink_to_fit();
        }
        Ok(event)
    }

    fn read_from<'de, D>(event_type: &str, schema_version: i32, data: D) -> Result<Self, DecodeError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        let malformed = |source| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            source,
        };
        match (event_type, schema_version) {
            ("TransferPosted", SCHEMA_VERSION) => {
                let v1: TransferPostedV1 = Deserialize::deserialize(data).map_err(malformed)?;
                return Ok(Self::TransferPosted(v1.into()));
            }
            ("TransferPosted", TRANSFER_POSTED_V2) => {
                let v2: TransferPosted = Deserialize::deserialize(data).map_err(malformed)?;
                if v2.effective_at_micros.is_none() {
                    return Err(malformed(serde::de::Error::missing_field("effective_at_micros")));
                }
                return Ok(Self::TransferPosted(v2));
            }
            (_, SCHEMA_VERSION) => {}
            _ if Self::is_known(event_type) => {
                return Err(DecodeError::UnsupportedSchema {
                    event_type: event_type.to_owned(),
                    version: schema_version,
                });
            }
            _ => return Err(DecodeError::UnknownType(event_type.to_owned())),
        }
        Ok(match event_type {
            "AssetRegistered" => Self::AssetRegistered(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountOpened" => Self::AccountOpened(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountFrozen" => Self::AccountFrozen(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountUnfrozen" => Self::AccountUnfrozen(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountClosed" => Self::AccountClosed(Deserialize::deserialize(data).map_err(malformed)?),
            "TransferPending" => Self::TransferPending(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingPosted" => Self::PendingPosted(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingVoided" => Self::PendingVoided(Deserialize::deserialize(data).map_err(malformed)?),
            "PendingExpired" => Self::PendingExpired(Deserialize::deserialize(data).map_err(malformed)?),
            "AccountMetadataSet" => Self::AccountMetadataSet(Deserialize::deserialize(data).map_err(malformed)?),
            "TransferMetadataSet" => Self::TransferMetadataSet(Deserialize::deserialize(data).map_err(malformed)?),
            "PersonalDataErased" => Self::PersonalDataErased(Deserialize::deserialize(data).map_err(malformed)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }

    fn is_known(event_type: &str) -> bool {
        matches!(
            event_type,
            "AssetRegistered"
                | "AccountOpened"
                | "AccountFrozen"
                | "AccountUnfrozen"
                | "AccountClosed"
                | "TransferPosted"
                | "TransferPending"
                | "PendingPosted"
                | "PendingVoided"
                | "PendingExpired"
                | "AccountMetadataSet"
                | "TransferMetadataSet"
                | "PersonalDataErased"
        )
    }
}

/// A stream id as stored: `asset:{code}`, `account:{id}`, `transfer:{id}` or `subject:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamId {
    Asset(AssetCode),
    Account(AccountId),
    Transfer(TransferId),
    Subject(SubjectId),
}

impl StreamId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        match value.split_once(':') {
            Some(("asset", code)) => AssetCode::parse(code).map(Self::Asset),
            Some(("account", id)) => AccountId::parse(id).map(Self::Account),
            Some(("transfer", id)) => TransferId::parse(id).map(Self::Transfer),
            Some(("subject", id)) => SubjectId::parse(id).map(Self::Subject),
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
            Self::Subject(id) => ("subject:", id.as_str()),
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
            Self::Subject(id) => write!(f, "subject:{id}"),
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
            effective_at_micros: None,
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
            Err(DecodeError::UnsupportedSchema { version: 2, .. })
        ));
        assert!(matches!(
            Event::decode("TransferPosted", 3, &Value::Null),
            Err(DecodeError::UnsupportedSchema { version: 3, .. })
        ));
    }

    /// A version 1 transfer, as logs written before effective times hold it, upcasts to one that
    /// takes effect when recorded; a version 2 one keeps its effective time and must have one.
    #[test]
    fn transfer_posted_upcasts_from_version_1() -> Result<(), Box<dyn std::error::Error>> {
        let v1 = serde_json::json!({
            "id": "t-1", "metadata": {"k": "v"}, "reverses": "t-0",
            "postings": [{"debit": "a", "credit": "b", "amount": 5}]
        });
        let Event::TransferPosted(upcast) = Event::decode("TransferPosted", 1, &v1)? else {
            return Err("not a TransferPosted".into());
        };
        assert_eq!(upcast.effective_at_micros, None);
        assert_eq!(upcast.effective_at(42), 42);
        assert_eq!(upcast.reverses.as_ref().map(TransferId::as_str), Some("t-0"));
        // Written again it is the same version 1 data: the upcast adds nothing to the log.
        let event = Event::TransferPosted(upcast);
        assert_eq!(event.schema_version(), 1);
        assert_eq!(event.data(), v1);

        let Event::TransferPosted(undated) = event else {
            return Err("not a TransferPosted".into());
        };
        let dated = Event::TransferPosted(TransferPosted {
            effective_at_micros: Some(7),
            ..undated
        });
        assert_eq!(dated.schema_version(), 2);
        let back = Event::decode("TransferPosted", 2, &dated.data())?;
        assert_eq!(back, dated);
        let Event::TransferPosted(back) = back else {
            return Err("not a TransferPosted".into());
        };
        assert_eq!(back.effective_at(42), 7);
        assert!(matches!(
            Event::decode("TransferPosted", 2, &v1),
            Err(DecodeError::Malformed { .. })
        ));
        Ok(())
    }
}
