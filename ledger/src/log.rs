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

/// Every hashed field of one log record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFields<'a> {
    pub position: i64,
    pub event_id: [u8; 16],
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub data: &'a Value,
    pub metadata: &'a Value,
    /// Microseconds since the Unix epoch.
    pub recorded_at: i64,
    pub prev_hash: &'a Hash,
}

impl RecordFields<'_> {
    /// The record's hash, chaining it to its predecessor through `prev_hash`.
    pub fn hash(&self) -> Hash {
        let mut bytes = Vec::with_capacity(256);
        self.encode(&mut bytes);
        Sha256::digest(&bytes).into()
    }

    /// The exact bytes that are hashed (documented in `docs/ARCHITECTURE.md`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(DOMAIN_TAG);
        out.extend_from_slice(&self.position.to_be_bytes());
        out.extend_from_slice(&self.event_id);
        put_bytes(out, self.stream_id.as_bytes());
        out.extend_from_slice(&self.stream_version.to_be_bytes());
        put_bytes(out, self.event_type.as_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        put_bytes(out, &canonical::to_vec(self.data));
        put_bytes(out, &canonical::to_vec(self.metadata));
        out.extend_from_slice(&self.recorded_at.to_be_bytes());
        out.extend_from_slice(self.prev_hash);
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
            data: &data,
            metadata: &metadata,
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
                data: &other_data,
                ..base.clone()
            },
            RecordFields {
                metadata: &data,
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
    }
}
