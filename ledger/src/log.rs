//! The log record and its hash chain: what makes the history tamper-evident.
//!
//! Each record's hash is SHA-256 over a length-prefixed binary encoding of every stored field, with
//! `data` and `metadata` in [`crate::canonical`] form, so a verifier can recompute it from any copy
//! of the log (a database, an export) regardless of how `jsonb` reformatted the JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the record at position 1.
pub const GENESIS_HASH: Hash = [0u8; 32];

/// Distinguishes this encoding from any other use of SHA-256 (and from future versions).
const DOMAIN_TAG: &[u8] = b"partida.event.v1\0";

/// A JSON field of a record, as it is hashed: its canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonField<'a> {
    /// A value, encoded canonically when hashed.
    Value(&'a Value),
    /// Text already in canonical form ([`canonical::is_canonical`]), hashed as it is.
    Canonical(&'a [u8]),
}

impl<'a> From<&'a Value> for JsonField<'a> {
    fn from(value: &'a Value) -> Self {
        Self::Value(value)
    }
}

/// Every hashed field of one log record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFields<'a> {
    pub position: i64,
    pub event_id: [u8; 16],
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub data: JsonField<'a>,
    pub metadata: JsonField<'a>,
    /// Microseconds since the Unix epoch.
    pub recorded_at: i64,
    pub prev_hash: &'a Hash,
}

impl RecordFields<'_> {
    /// The record's hash, chaining it to its predecessor through `prev_hash`.
    pub fn hash(&self) -> Hash {
        let mut bytes = Vec::with_capacity(512);
        self.encode(&mut bytes);
        Sha256::digest(&bytes).into()
    }

    /// The exact bytes that are hashed (normative: `docs/LOG-FORMAT.md`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(DOMAIN_TAG);
        out.extend_from_slice(&self.position.to_be_bytes());
        out.extend_from_slice(&self.event_id);
        put_bytes(out, self.stream_id.as_bytes());
        out.extend_from_slice(&self.stream_version.to_be_bytes());
        put_bytes(out, self.event_type.as_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        put_canonical(out, self.data);
        put_canonical(out, self.metadata);
        out.extend_from_slice(&self.recorded_at.to_be_bytes());
        out.extend_from_slice(self.prev_hash);
    }
}

/// Why a run of records is not a valid piece of the chain, naming the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("position {expected} is missing: position {found} comes in its place")]
    Gap { expected: i64, found: i64 },
    #[error("position {position}: prev_hash does not match the hash of position {}", position - 1)]
    BrokenLink { position: i64 },
    #[error(
        "position {position}: hash mismatch: recomputed {}, stored {}",
        hex::encode(recomputed),
        hex::encode(stored)
    )]
    HashMismatch {
        position: i64,
        recomputed: Hash,
        stored: Hash,
    },
    #[error("position {position}: recorded before position {}", position - 1)]
    TimeReversed { position: i64 },
}

/// What the chain check needs of a record once its hash has been recomputed from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    pub position: i64,
    pub prev_hash: Hash,
    pub recorded_at: i64,
    /// The hash recomputed from the fields (not the stored one).
    pub recomputed: Hash,
}

impl From<&RecordFields<'_>> for Hashed {
    fn from(fields: &RecordFields<'_>) -> Self {
        Self {
            position: fields.position,
            prev_hash: *fields.prev_hash,
            recorded_at: fields.recorded_at,
            recomputed: fields.hash(),
        }
    }
}

/// Checks log records one at a time, in order: dense positions, each link to the predecessor,
/// each hash recomputed from the fields, time never running backwards. Constant memory, so an
/// export of any length streams through it.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    next_position: i64,
    prev_hash: Hash,
    prev_time: i64,
}

impl ChainCheck {
    /// Expects position 1, linked to [`GENESIS_HASH`].
    pub fn from_genesis() -> Self {
        Self::after(0, GENESIS_HASH, i64::MIN)
    }

    /// Expects `position + 1`, linked to `hash` (trusted from elsewhere, e.g. a checkpoint),
    /// recorded no earlier than `recorded_at`.
    pub fn after(position: i64, hash: Hash, recorded_at: i64) -> Self {
        Self {
            next_position: position + 1,
            prev_hash: hash,
            prev_time: recorded_at,
        }
    }

    /// Checks the next record against its stored hash and moves past it.
    pub fn check(&mut self, fields: &RecordFields<'_>, stored_hash: &Hash) -> Result<(), ChainError> {
        self.check_hashed(&Hashed::from(fields), stored_hash)
    }

    /// [`check`](Self::check) for a record whose hash was already recomputed (by a verifier that
    /// hashes on one thread and follows the chain on another).
    pub fn check_hashed(&mut self, record: &Hashed, stored_hash: &Hash) -> Result<(), ChainError> {
        let position = record.position;
        if position != self.next_position {
            return Err(ChainError::Gap {
                expected: self.next_position,
                found: position,
            });
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainError::BrokenLink { position });
        }
        let recomputed = record.recomputed;
        if recomputed != *stored_hash {
            return Err(ChainError::HashMismatch {
                position,
                recomputed,
                stored: *stored_hash,
            });
        }
        if record.recorded_at < self.prev_time {
            return Err(ChainError::TimeReversed { position });
        }
        self.next_position = position + 1;
        self.prev_hash = recomputed;
        self.prev_time = record.recorded_at;
        Ok(())
    }

    /// The last position checked (0 before any).
    pub fn position(&self) -> i64 {
        self.next_position - 1
    }

    /// The hash of the last record checked: the chain's head so far.
    pub fn head_hash(&self) -> &Hash {
        &self.prev_hash
    }

    /// When the last record checked was recorded, in microseconds since the epoch.
    pub fn head_time(&self) -> i64 {
        self.prev_time
    }
}

/// [`put_bytes`] of the canonical encoding of `value`, written in place.
fn put_canonical(out: &mut Vec<u8>, field: JsonField<'_>) {
    match field {
        JsonField::Canonical(text) => put_bytes(out, text),
        JsonField::Value(value) => {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            canonical::write(value, out);
            let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Fields are bounded far below 4 GiB by the APIs' body limits.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_changes_the_hash() {
        let data = json!({"id": "EUR", "scale": 2});
        let other_data = json!({"id": "EUR", "scale": 3});
        let metadata = json!({});
        let base = RecordFields {
            position: 1,
            event_id: [7; 16],
            stream_id: "asset:EUR",
            stream_version: 1,
            event_type: "AssetRegistered",
            schema_version: 1,
            data: (&data).into(),
            metadata: (&metadata).into(),
            recorded_at: 1_700_000_000_000_000,
            prev_hash: &GENESIS_HASH,
        };
        let h = base.hash();
        let one = [1u8; 32];
        let variants = [
            RecordFields {
                position: 2,
                ..base.clone()
            },
            RecordFields {
                event_id: [8; 16],
                ..base.clone()
            },
            RecordFields {
                stream_id: "asset:USD",
                ..base.clone()
            },
            RecordFields {
                stream_version: 2,
                ..base.clone()
            },
            RecordFields {
                event_type: "X",
                ..base.clone()
            },
            RecordFields {
                schema_version: 2,
                ..base.clone()
            },
            RecordFields {
                data: (&other_data).into(),
                ..base.clone()
            },
            RecordFields {
                metadata: (&data).into(),
                ..base.clone()
            },
            RecordFields {
                recorded_at: 1,
                ..base.clone()
            },
            RecordFields {
                prev_hash: &one,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.hash(), h, "{v:?}");
        }
        assert_eq!(base.hash(), h);
        let text = canonical::to_vec(&data);
        assert!(canonical::is_canonical(&text));
        let raw = RecordFields {
            data: JsonField::Canonical(&text),
            ..base.clone()
        };
        assert_eq!(raw.hash(), h, "canonical text hashes as its value does");
    }

    /// Three linked records from genesis: (fields, stored hash) as owned parts.
    fn chain_of_three() -> Vec<(i64, Hash, Hash, i64)> {
        let (data, metadata) = (json!({"n": 1}), json!({}));
        let mut prev = GENESIS_HASH;
        (1..=3)
            .map(|position| {
                let fields = record(position, &data, &metadata, &prev, 10 * position);
                let hash = fields.hash();
                let row = (position, prev, hash, 10 * position);
                prev = hash;
                row
            })
            .collect()
    }

    fn record<'a>(position: i64, data: &'a Value, metadata: &'a Value, prev: &'a Hash, at: i64) -> RecordFields<'a> {
        RecordFields {
            position,
            event_id: [1; 16],
            stream_id: "s",
            stream_version: position,
            event_type: "T",
            schema_version: 1,
            data: data.into(),
            metadata: metadata.into(),
            recorded_at: at,
            prev_hash: prev,
        }
    }

    #[test]
    fn a_chain_check_names_the_first_bad_position() {
        let (data, metadata) = (json!({"n": 1}), json!({}));
        let rows = chain_of_three();
        let run = |rows: &[(i64, Hash, Hash, i64)]| {
            let mut check = ChainCheck::from_genesis();
            for (position, prev, hash, at) in rows {
                check.check(&record(*position, &data, &metadata, prev, *at), hash)?;
            }
            Ok::<_, ChainError>(check.position())
        };
        assert_eq!(run(&rows), Ok(3));
        assert_eq!(run(&[rows[0], rows[2]]), Err(ChainError::Gap { expected: 2, found: 3 }));
        let mut forged = rows.clone();
        forged[1].1 = [9; 32];
        assert_eq!(run(&forged), Err(ChainError::BrokenLink { position: 2 }));
        let mut flipped = rows.clone();
        flipped[2].2[0] ^= 1;
        assert!(matches!(
            run(&flipped),
            Err(ChainError::HashMismatch { position: 3, .. })
        ));
        let mut early = rows.clone();
        early[2].3 = 0;
        // The time is hashed, so an edited time also breaks the hash: re-hash to isolate the rule.
        early[2].2 = record(3, &data, &metadata, &early[2].1, 0).hash();
        assert_eq!(run(&early), Err(ChainError::TimeReversed { position: 3 }));
    }

    #[test]
    fn a_chain_check_resumes_after_a_trusted_point() {
        let (data, metadata) = (json!({"n": 1}), json!({}));
        let rows = chain_of_three();
        let (_, _, second_hash, second_at) = rows[1];
        let mut check = ChainCheck::after(2, second_hash, second_at);
        let (position, prev, hash, at) = rows[2];
        assert_eq!(
            check.check(&record(position, &data, &metadata, &prev, at), &hash),
            Ok(())
        );
        assert_eq!(check.head_hash(), &hash);
        assert_eq!((check.position(), check.head_time()), (3, at));
    }
}
