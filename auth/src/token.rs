//! API tokens: `ptk_` and 64 hex digits of randomness. The database keeps only their SHA-256, so
//! whoever reads it (a standby, a backup, an export of the table) holds no credential.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Role;

/// What every API token starts with: tells it apart from a JWT, and makes a leaked one easy to
/// find with a secret scanner.
pub const PREFIX: &str = "ptk_";

/// A token as it is shown once, at creation.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub id: Uuid,
    pub subject: String,
    pub role: Role,
    pub token: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored token, without its secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: Uuid,
    pub subject: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh token secret.
pub fn generate() -> anyhow::Result<String> {
    let mut secret = [0_u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("the system has no randomness: {e}"))?;
    Ok(format!("{PREFIX}{}", hex::encode(secret)))
}

/// Whether `text` has the shape of an API token (checked before any lookup).
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .is_some_and(|secret| secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Creates a token for `subject` with `role`; the only time its secret exists outside the caller.
pub async fn create(
    pool: &PgPool,
    subject: &str,
    role: Role,
    expires_at: Option<OffsetDateTime>,
) -> anyhow::Result<IssuedToken> {
    let subject = subject.trim();
    anyhow::ensure!(
        (1..=200).contains(&subject.chars().count()),
        "a subject is 1 to 200 characters"
    );
    let token = generate()?;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO api_tokens (id, subject, role, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(subject)
        .bind(role.as_str())
        .bind(hash(&token).as_slice())
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(IssuedToken {
        id,
        subject: subject.to_owned(),
        role,
        token,
        expires_at,
    })
}

/// Revokes a token by id; false when there is no such token or it was already revoked.
pub async fn revoke(pool: &PgPool, id: Uuid) -> anyhow::Result<bool> {
    let revoked = sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Every token, newest first.
pub async fn list(pool: &PgPool) -> anyhow::Result<Vec<TokenRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, subject, role, created_at, expires_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// The live token with this hash: not revoked, not expired.
pub(crate) async fn lookup(
    pool: &PgPool,
    token_hash: &[u8; 32],
) -> Result<Option<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, subject, role FROM api_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(!well_formed("ptk_short"));
        assert!(!well_formed(&format!("ptx_{}", "a".repeat(64))));
        assert!(!well_formed(&format!("ptk_{}", "g".repeat(64))));
    }
}
