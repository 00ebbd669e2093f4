//! Signed checkpoints: the write side's statement that the log, at `position`, has the chain
//! hash `chain_hash` and the Merkle root `merkle_root`, signed with Ed25519. Whoever holds the
//! database but not the key cannot rewrite history behind a published checkpoint without the
//! signature or the roots failing.
//!
//! The signed bytes (normative, `docs/LOG-FORMAT.md`):
//! `"partida.checkpoint.v1\0" | position i64 BE | chain_hash 32 | merkle_root 32 |
//!  signed_at i64 BE (µs since the epoch) | u32 BE length | key_id UTF-8`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::log::Hash;

const DOMAIN_TAG: &[u8] = b"partida.checkpoint.v1\0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub chain_hash: Hash,
    pub merkle_root: Hash,
    /// Microseconds since the Unix epoch.
    pub signed_at: i64,
    pub key_id: String,
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("public key {0} is not a valid Ed25519 key")]
    BadKey(String),
    #[error("the signature of the checkpoint at position {0} does not verify")]
    BadSignature(i64),
}

/// A key's id: `ed25519:` and the first 16 hex digits of the SHA-256 of the public key.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    format!("ed25519:{}", hex::encode(&digest[..8]))
}

/// The public key of a secret seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

impl Checkpoint {
    /// Signs the statement with `seed` (an Ed25519 secret key); the key id is derived from it.
    pub fn sign(seed: &[u8; 32], position: i64, chain_hash: Hash, merkle_root: Hash, signed_at: i64) -> Self {
        let key = SigningKey::from_bytes(seed);
        let mut checkpoint = Self {
            position,
            chain_hash,
            merkle_root,
            signed_at,
            key_id: key_id(&key.verifying_key().to_bytes()),
            signature: [0; 64],
        };
        checkpoint.signature = key.sign(&checkpoint.statement()).to_bytes();
        checkpoint
    }

    /// The bytes that are signed.
    pub fn statement(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN_TAG.len() + 8 + 64 + 8 + 4 + self.key_id.len());
        out.extend_from_slice(DOMAIN_TAG);
        out.extend_from_slice(&self.position.to_be_bytes());
        out.extend_from_slice(&self.chain_hash);
        out.extend_from_slice(&self.merkle_root);
        out.extend_from_slice(&self.signed_at.to_be_bytes());
        let len = u32::try_from(self.key_id.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.key_id.as_bytes());
        out
    }

    /// Checks the signature with `public_key` (strict Ed25519 verification).
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), CheckpointError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| CheckpointError::BadKey(key_id(public_key)))?;
        key.verify_strict(&self.statement(), &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckpointError::BadSignature(self.position))?;
        if key_id(public_key) != self.key_id {
            return Err(CheckpointError::BadSignature(self.position));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_with_its_key_only() {
        let seed = [7u8; 32];
        let checkpoint = Checkpoint::sign(&seed, 42, [1; 32], [2; 32], 1_700_000_000_000_000);
        let public = public_key(&seed);
        assert_eq!(checkpoint.key_id, key_id(&public));
        assert_eq!(checkpoint.verify(&public), Ok(()));
        assert_eq!(
            checkpoint.verify(&public_key(&[8u8; 32])),
            Err(CheckpointError::BadSignature(42))
        );
        for tamper in [
            |c: &mut Checkpoint| c.position += 1,
            |c: &mut Checkpoint| c.chain_hash[0] ^= 1,
            |c: &mut Checkpoint| c.merkle_root[31] ^= 1,
            |c: &mut Checkpoint| c.signed_at += 1,
            |c: &mut Checkpoint| c.key_id.push('x'),
        ] {
            let mut forged = checkpoint.clone();
            tamper(&mut forged);
            assert!(forged.verify(&public).is_err(), "{forged:?}");
        }
    }
}
