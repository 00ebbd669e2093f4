//! `POST /v1/transfers/batch`: many transfers and hold resolutions in one request. The items are
//! kept as their JSON text until each is parsed on its own, so that a malformed one fails alone;
//! what a failed item still answers under (its id as sent, its chain) is read from its text first.

use std::fmt;

use axum::extract::State;
use axum::http::StatusCode;
use ledger::{Command, Rejection, TransferId};
use partida_eventstore::personal::SealError;
use partida_eventstore::{AppendError, Reply, Submission};
use partida_service::openapi::ErrorBody;
use partida_service::{ApiError, Json};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::transfers::{ResolutionItem, TransferBody};
use crate::request::{IdempotencyKeyHeader, WriteMeta};
use crate::{AppState, error};

/// Transfers to post and holds to resolve, each decided on its own or with its chain.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchBody {
    /// 1 to 1,000 items (`PARTIDA_BATCH_MAX_TRANSFERS`) with at most 10,000 postings in all
    /// (`PARTIDA_BATCH_MAX_POSTINGS`): transfers, and resolutions of holds (an item with
    /// `resolve`). A malformed item fails alone, in its result (with its chain, if it has one).
    #[schema(value_type = Vec<BatchItem>, min_items = 1)]
    transfers: Vec<Box<RawValue>>,
}

/// A batch item: a transfer, or the resolution of a hold.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BatchItem {
    Transfer(TransferBody),
    Resolution(ResolutionItem),
}

/// One result per transfer of a batch, in order.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchResults {
    results: Vec<BatchResult>,
}

/// A transfer's result: its position, or its error in the one error shape.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BatchResult {
    /// The transfer's id as sent.
    #[schema(value_type = Value)]
    id: Value,
    /// Where it was written (or was already).
    position: Option<i64>,
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
}

/// Posts many transfers: each is decided on its own (or with its chain, all or none), in order,
/// in as few transactions as the writer's caps allow; one result per transfer, in order. Each transfer's id makes it
/// idempotent; `Idempotency-Key` makes the whole batch replay its first answer.
#[utoipa::path(
    post,
    path = "/v1/transfers/batch",
    operation_id = "postTransferBatch",
    tag = "transfers",
    params(IdempotencyKeyHeader),
    request_body = BatchBody,
    responses(
        (status = 200, description = "One result per transfer.", body = BatchResults),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
    )
)]
pub(super) async fn batch(
    State(state): State<AppState>,
    meta: WriteMeta,
    Json(body): Json<BatchBody>,
) -> Result<axum::Json<Results>, ApiError> {
    let limits = state.limits;
    let too_large = |what: &str, max: usize| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a batch holds at most {max} {what}"),
        )
        .with_details(json!({ "max": max, "limit": what }))
    };
    if body.transfers.is_empty() {
        return Err(ApiError::validation("transfers must not be empty", "transfers"));
    }
    if body.transfers.len() > limits.batch_max_transfers {
        return Err(too_large("transfers", limits.batch_max_transfers));
    }
    let envelopes: Vec<Envelope> = body.transfers.iter().map(|raw| Envelope::of(raw)).collect();
    let labels: Vec<Option<String>> = envelopes.iter().map(|e| e.chain.clone()).collect();
    check_chains_consecutive(&labels)?;

    let key = meta.key("POST /v1/transfers/batch", || {
        // Valid JSON by construction: `RawValue` holds only what parsed.
        let items = body
            .transfers
            .iter()
            .map(|raw| serde_json::from_str(raw.get()).unwrap_or_default());
        ledger::canonical::to_vec(&json!({ "transfers": items.collect::<Vec<Value>>() }))
    });
    let mut items = parse_items(&body.transfers, envelopes);
    fail_chains(&mut items, &labels);
    // Counted as the writer counts them: a resolution that names no legs as a hold's most.
    let postings: usize = items
        .iter()
        .map(|item| match item {
            Item::Submit(_, command, _) => command.legs(),
            Item::Failed(..) => 0,
        })
        .sum();
    if postings > limits.batch_max_postings {
        return Err(too_large("postings", limits.batch_max_postings));
    }
    // Only once the batch is known to fit: sealing reads (and may create) subject keys.
    seal_items(&state, &mut items).await?;
    fail_chains(&mut items, &labels);
    let submissions: Vec<Submission> = items
        .iter()
        .filter_map(|item| match item {
            Item::Submit(_, command, chain) => {
                let submission = meta.natural(command.clone());
                Some(match chain {
                    Some(label) => submission.in_chain(label.clone()),
                    None => submission,
                })
            }
            Item::Failed(..) => None,
        })
        .collect();

    // Nothing well-formed: no transaction to open.
    let replies = match key {
        _ if submissions.is_empty() => Vec::new(),
        Some(key) => state.writer.submit_keyed(submissions, key).await,
        None => state.writer.submit_all(submissions).await,
    };
    // A key reused with another request conflicts as a whole.
    if let Some(Ok(Reply::Rejected(
        conflict @ Rejection::IdempotencyConflict {
            kind: "idempotency_key",
            ..
        },
    ))) = replies.first()
    {
        return Err(error::rejection(conflict));
    }
    let mut replies = replies.into_iter();
    let results = items
        .into_iter()
        .map(|item| match item {
            Item::Failed(id, error) => Answered {
                id: Id::Sent(id),
                answer: Answer::Error(error.body()["error"].clone()),
            },
            Item::Submit(id, ..) => Answered {
                id: Id::Parsed(id),
                answer: match replies.next().unwrap_or(Err(AppendError::Internal)) {
                    Ok(Reply::Written { position } | Reply::Replayed { position }) => Answer::Position(position),
                    Ok(Reply::Rejected(rejection)) => {
                        Answer::Error(error::rejection(&rejection).body()["error"].clone())
                    }
                    Ok(Reply::Recorded(answer)) => Answer::Recorded(answer),
                    Err(failure) => Answer::Error(error::append(failure).body()["error"].clone()),
                },
            },
        })
        .collect();
    Ok(axum::Json(Results { results }))
}

/// The batch's answer: one result per item, in order.
#[derive(Serialize)]
pub(super) struct Results {
    results: Vec<Answered>,
}

/// One item's result: `{"id", "position"}` or `{"id", "error"}` ([`BatchResult`]).
struct Answered {
    id: Id,
    answer: Answer,
}

/// An item's id: parsed, or as sent when the item failed to parse.
enum Id {
    Parsed(TransferId),
    Sent(Value),
}

enum Answer {
    Position(i64),
    Error(Value),
    /// A keyed batch's replay: the fields recorded the first time (all but the id).
    Recorded(Value),
}

impl Serialize for Answered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.id {
            Id::Parsed(id) => map.serialize_entry("id", id.as_str())?,
            Id::Sent(id) => map.serialize_entry("id", id)?,
        }
        match &self.answer {
            Answer::Position(position) => map.serialize_entry("position", position)?,
            Answer::Error(error) => map.serialize_entry("error", error)?,
            Answer::Recorded(Value::Object(fields)) => {
                for (name, value) in fields.iter().filter(|(name, _)| *name != "id") {
                    map.serialize_entry(name, value)?;
                }
            }
            Answer::Recorded(other) => map.serialize_entry("answer", other)?,
        }
        map.end()
    }
}

/// What a batch item is known by before it is parsed: its id as sent (`resolve` for a
/// resolution, otherwise `id`; `null` when absent) and its chain's label. Read from any item,
/// however malformed, so that a failed one still answers under its id and fails its chain. A
/// repeated field counts with its last value, as a JSON object's reader keeps it.
#[derive(Default)]
struct Envelope {
    id: Value,
    resolve: Option<Value>,
    chain: Option<String>,
}

impl Envelope {
    /// The envelope of `raw`; an item that is not an object has none of these fields.
    fn of(raw: &RawValue) -> Self {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }

    /// Whether the item resolves a hold: it has a `resolve` field, whatever its value.
    fn resolution(&self) -> bool {
        self.resolve.is_some()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = Envelope;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                let mut envelope = Envelope::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => envelope.id = map.next_value()?,
                        Key::Resolve => envelope.resolve = Some(map.next_value()?),
                        Key::Chain => envelope.chain = map.next_value::<Value>()?.as_str().map(str::to_owned),
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if let Some(resolve) = &envelope.resolve {
                    envelope.id = resolve.clone();
                }
                Ok(envelope)
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

/// The fields of a batch item an [`Envelope`] reads.
enum Key {
    Id,
    Resolve,
    Chain,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl Visitor<'_> for Name {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "id" => Key::Id,
                    "resolve" => Key::Resolve,
                    "chain" => Key::Chain,
                    _ => Key::Other,
                })
            }
        }

        deserializer.deserialize_identifier(Name)
    }
}

/// A batch item: a command to submit (with the id it answers under and its chain's label), or
/// its error with the id as sent.
enum Item {
    Submit(TransferId, Command, Option<String>),
    Failed(Value, ApiError),
}

/// Parses every item from its text; a malformed one fails alone (see [`fail_chains`]).
fn parse_items(raw: &[Box<RawValue>], envelopes: Vec<Envelope>) -> Vec<Item> {
    raw.iter()
        .zip(envelopes)
        .enumerate()
        .map(|(index, (raw, envelope))| {
            let prefix = format!("transfers[{index}]");
            let parsed = if envelope.resolution() {
                partida_service::from_text::<ResolutionItem>(raw.get(), &prefix)
                    .and_then(|r| r.into_command(&format!("{prefix}.")))
            } else {
                partida_service::from_text::<TransferBody>(raw.get(), &prefix)
                    .and_then(|t| t.into_command(&format!("{prefix}.")))
                    .map(|(transfer, chain)| (transfer.id.clone(), Command::PostTransfer(transfer), chain))
            };
            match parsed {
                Ok((id, command, chain)) => Item::Submit(id, command, chain),
                Err(error) => Item::Failed(envelope.id, error),
            }
        })
        .collect()
}

/// Seals the personal data of each transfer to submit; one whose data is malformed or whose
/// subject is erased fails alone. The subject keys being out of reach fails the whole request
/// (`503`): a retry must meet the same items, or its `Idempotency-Key` would conflict.
async fn seal_items(state: &AppState, items: &mut [Item]) -> Result<(), ApiError> {
    for (index, item) in items.iter_mut().enumerate() {
        let Item::Submit(id, Command::PostTransfer(transfer), _) = item else {
            continue;
        };
        let prefix = format!("transfers[{index}].");
        match partida_eventstore::personal::seal(&state.pool, &mut transfer.metadata).await {
            Ok(()) => {}
            Err(error @ SealError::Database(_)) => return Err(super::personal::api_error(error, &prefix)),
            Err(error) => *item = Item::Failed(json!(id), super::personal::api_error(error, &prefix)),
        }
    }
    Ok(())
}

/// A failed item fails alone, unless it is in a chain: then every other member fails with it,
/// as `linked_failed`, and none is submitted. A chain whose members all failed already is left
/// as it is, so this can run again after more items fail.
fn fail_chains(items: &mut [Item], labels: &[Option<String>]) {
    let mut index = 0;
    while index < items.len() {
        let Some(label) = &labels[index] else {
            index += 1;
            continue;
        };
        let members = labels[index..].iter().take_while(|l| l.as_ref() == Some(label)).count();
        let chain = index..index + members;
        if items[chain.clone()].iter().all(|item| matches!(item, Item::Failed(..))) {
            index = chain.end;
            continue;
        }
        let malformed = items[chain.clone()]
            .iter()
            .position(|item| matches!(item, Item::Failed(..)));
        if let Some(member) = malformed {
            let Item::Failed(id, error) = &items[index + member] else {
                unreachable!("found as failed above")
            };
            let linked = error::rejection(&Rejection::LinkedFailed {
                chain: label.clone(),
                member,
                id: id.as_str().map_or_else(|| id.to_string(), str::to_owned),
                code: error.code,
            });
            for (offset, item) in items[chain.clone()].iter_mut().enumerate() {
                if offset != member {
                    let id = match item {
                        Item::Submit(id, ..) => json!(id),
                        Item::Failed(id, _) => id.clone(),
                    };
                    *item = Item::Failed(id, linked.clone());
                }
            }
        }
        index = chain.end;
    }
}

/// A chain's members are consecutive items: a label cannot come back after another item.
fn check_chains_consecutive(labels: &[Option<String>]) -> Result<(), ApiError> {
    let mut ended = std::collections::HashSet::new();
    let mut current: Option<&str> = None;
    for (index, label) in labels.iter().enumerate() {
        let label = label.as_deref();
        if label != current {
            if let Some(done) = current {
                ended.insert(done);
            }
            if let Some(label) = label.filter(|l| ended.contains(l)) {
                let field = format!("transfers[{index}].chain");
                return Err(ApiError::validation(
                    format!("{field}: the members of chain {label:?} must be consecutive items"),
                    field,
                ));
            }
            current = label;
        }
    }
    Ok(())
}
