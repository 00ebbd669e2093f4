//! Personal data in metadata (docs/PERSONAL-DATA.md). A data subject's personal data travels
//! under the metadata key `personal`, sealed with AES-256-GCM-SIV under the subject's own key
//! before it reaches the log. Erasing the subject destroys the key (crypto-shredding): the log
//! and its hash chain stay as they were, and what was sealed can no longer be read.
//!
//! The three forms of `metadata.personal`:
//! - as a client writes it and the read tables show it: `{"subject": id, "data": value}`;
//! - as the log keeps it: `{"subject": id, "sealed": base64}`;
//! - as the read tables show it once the subject is erased: `{"subject": id, "erased": true}`.

use std::collections::HashMap;

use aes_gcm_siv::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ledger::{Event, Metadata, SubjectId};
use serde_json::{Value, json};
use sqlx::{PgExecutor, PgPool, Row};

/// The metadata key personal data lives under.
pub const PERSONAL: &str = "personal";

/// Sealing is deterministic (RFC 8452's nonce-misuse resistance makes one nonce per key safe):
/// the same data of the same subject seals to the same text, so a retried request is an identical
/// replay. What it reveals is only that two sealed values of one subject are equal.
const NONCE: [u8; 12] = [0; 12];

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("metadata.personal must be null or {{\"subject\": id, \"data\": value}}; {0}")]
    Malformed(&'static str),
    #[error("the personal data of subject {0} is erased: nothing can be sealed for it")]
    Erased(SubjectId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Seals `metadata.personal` in place, when it holds personal data, under its subject's key
/// (created on first use). `null`, which a patch uses to remove the key, stays as it is.
pub async fn seal(pool: &PgPool, metadata: &mut Metadata) -> Result<(), SealError> {
    let Some(value) = metadata.get_mut(PERSONAL) else {
        return Ok(());
    };
    if value.is_null() {
        return Ok(());
    }
    let (subject, data) = plain(value)?;
    let key = subject_key(pool, &subject).await?;
    let sealed = seal_with(&key, &subject, data);
    *value = json!({ "subject": subject.as_str(), "sealed": sealed });
    Ok(())
}

/// Reads the client form, `{"subject": id, "data": value}` with a value that is not null.
fn plain(value: &Value) -> Result<(SubjectId, &Value), SealError> {
    let Value::Object(fields) = value else {
        return Err(SealError::Malformed("it is not an object"));
    };
    if fields.len() != 2 {
        return Err(SealError::Malformed("it must have exactly the keys subject and data"));
    }
    let subject = fields
        .get("subject")
        .and_then(Value::as_str)
        .and_then(|s| SubjectId::parse(s).ok())
        .ok_or(SealError::Malformed("subject must be 1 to 128 letters, digits or :._-"))?;
    match fields.get("data") {
        Some(Value::Null) | None => Err(SealError::Malformed("data must be present and not null")),
        Some(data) => Ok((subject, data)),
    }
}

/// The subject's key: one read, and for a new subject one insert (a concurrent first use wins
/// the race or loses it; either way both seal under the one stored key).
async fn subject_key(pool: &PgPool, subject: &SubjectId) -> Result<[u8; 32], SealError> {
    const READ: &str = "SELECT key FROM subject_keys WHERE subject = $1";
    let stored = |row: Option<Option<Vec<u8>>>| match row {
        None => Ok(None),
        Some(None) => Err(SealError::Erased(subject.clone())),
        Some(Some(key)) => key
            .try_into()
            .map(Some)
            .map_err(|_| SealError::Database(sqlx::Error::Decode("a subject key is not 32 bytes".into()))),
    };
    if let Some(key) = stored(
        sqlx::query_scalar(READ)
            .bind(subject.as_str())
            .fetch_optional(pool)
            .await?,
    )? {
        return Ok(key);
    }
    let fresh: [u8; 32] = Aes256GcmSiv::generate_key(&mut OsRng).into();
    sqlx::query("INSERT INTO subject_keys (subject, key) VALUES ($1, $2) ON CONFLICT (subject) DO NOTHING")
        .bind(subject.as_str())
        .bind(&fresh[..])
        .execute(pool)
        .await?;
    let key = stored(
        sqlx::query_scalar(READ)
            .bind(subject.as_str())
            .fetch_optional(pool)
            .await?,
    )?;
    key.ok_or_else(|| SealError::Database(sqlx::Error::RowNotFound))
}

/// AES-256-GCM-SIV over the canonical JSON of `data`, bound to the subject as associated data
/// (a sealed value moved under another subject does not open).
fn seal_with(key: &[u8; 32], subject: &SubjectId, data: &Value) -> String {
    let cipher = Aes256GcmSiv::new(key.into());
    let payload = Payload {
        msg: &ledger::canonical::to_vec(data),
        aad: subject.as_str().as_bytes(),
    };
    // Encryption fails only for inputs beyond 2^36 bytes; metadata is bounded far below that.
    let sealed = cipher.encrypt(Nonce::from_slice(&NONCE), payload).unwrap_or_default();
    BASE64.encode(sealed)
}

fn open_with(key: &[u8; 32], subject: &str, sealed: &str) -> Option<Value> {
    let cipher = Aes256GcmSiv::new(key.into());
    let sealed = BASE64.decode(sealed).ok()?;
    let payload = Payload {
        msg: &sealed,
        aad: subject.as_bytes(),
    };
    let data = cipher.decrypt(Nonce::from_slice(&NONCE), payload).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The sealed form's subject and text, when `value` is exactly one: an object of a valid
/// subject id and base64 text, and nothing else.
pub fn sealed_form(value: &Value) -> Option<(&str, &str)> {
    let fields = value.as_object().filter(|fields| fields.len() == 2)?;
    let subject = fields.get("subject")?.as_str()?;
    let sealed = fields.get("sealed")?.as_str()?;
    let valid = SubjectId::parse(subject).is_ok() && BASE64.decode(sealed).is_ok();
    valid.then_some((subject, sealed))
}

/// The subject whose personal data `metadata` seals, if any.
pub fn sealed_subject(metadata: &Metadata) -> Option<&str> {
    sealed_form(metadata.get(PERSONAL)?).map(|(subject, _)| subject)
}

/// The keys of the subjects some events seal personal data for: `None` for an erased subject.
#[derive(Debug, Default)]
pub struct Keys(HashMap<String, Option<[u8; 32]>>);

impl Keys {
    /// The keys `events` need, in one read when any needs one. Read in the caller's transaction,
    /// so an erasure that committed before it is seen here or in the events applied after.
    pub async fn for_events<'e, 'a>(
        executor: impl PgExecutor<'e>,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<Self, sqlx::Error> {
        let mut subjects: Vec<&str> = events
            .into_iter()
            .filter_map(|event| sealed_subject(event.metadata()?))
            .collect();
        if subjects.is_empty() {
            return Ok(Self::default());
        }
        subjects.sort_unstable();
        subjects.dedup();
        let rows = sqlx::query("SELECT subject, key FROM subject_keys WHERE subject = ANY($1)")
            .bind(&subjects)
            .fetch_all(executor)
            .await?;
        let mut keys = HashMap::with_capacity(rows.len());
        for row in rows {
            let key: Option<Vec<u8>> = row.try_get("key")?;
            keys.insert(row.try_get("subject")?, key.and_then(|k| k.try_into().ok()));
        }
        Ok(Self(keys))
    }

    /// Opens `metadata.personal` in place when it is sealed: to `{"subject", "data"}` with the
    /// subject's key, or to `{"subject", "erased": true}` without one (erased, or a key that no
    /// longer opens it).
    pub fn open(&self, metadata: &mut Metadata) {
        let Some(value) = metadata.get_mut(PERSONAL) else {
            return;
        };
        let Some((subject, text)) = sealed_form(value) else {
            return;
        };
        let data = self
            .0
            .get(subject)
            .and_then(Option::as_ref)
            .and_then(|key| open_with(key, subject, text));
        *value = match data {
            Some(data) => json!({ "subject": subject, "data": data }),
            None => json!({ "subject": subject, "erased": true }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(id: &str) -> Result<SubjectId, ledger::IdError> {
        SubjectId::parse(id)
    }

    #[test]
    fn sealing_is_deterministic_and_bound_to_key_and_subject() -> Result<(), Box<dyn std::error::Error>> {
        let key = [7u8; 32];
        let data = json!({"name": "Ada Lovelace", "email": "ada@example.com"});
        let reordered = json!({"email": "ada@example.com", "name": "Ada Lovelace"});
        let sealed = seal_with(&key, &subject("customer-42")?, &data);
        assert_eq!(sealed, seal_with(&key, &subject("customer-42")?, &reordered));
        assert!(!sealed.contains("Ada"));
        assert_eq!(open_with(&key, "customer-42", &sealed), Some(data));
        assert_eq!(open_with(&[8u8; 32], "customer-42", &sealed), None);
        assert_eq!(open_with(&key, "customer-7", &sealed), None);
        assert_ne!(sealed, seal_with(&[8u8; 32], &subject("customer-42")?, &reordered));
        Ok(())
    }

    #[test]
    fn the_client_form_is_exactly_a_subject_and_data() {
        let refused = |value: Value| matches!(plain(&value), Err(SealError::Malformed(_)));
        assert!(plain(&json!({"subject": "c-1", "data": {"name": "Ada"}})).is_ok());
        assert!(plain(&json!({"subject": "c-1", "data": "Ada"})).is_ok());
        assert!(refused(json!("Ada")));
        assert!(refused(json!({"subject": "c-1"})));
        assert!(refused(json!({"subject": "c-1", "data": null})));
        assert!(refused(json!({"subject": "no spaces", "data": 1})));
        assert!(refused(json!({"subject": "c-1", "sealed": "AAAA"})));
        assert!(refused(json!({"subject": "c-1", "data": 1, "erased": true})));
    }

    #[test]
    fn sealed_values_open_with_their_key_or_read_as_erased() -> Result<(), Box<dyn std::error::Error>> {
        let key = [7u8; 32];
        let sealed = seal_with(&key, &subject("c-1")?, &json!("Ada"));
        let metadata = |value: Value| -> Metadata {
            let mut metadata = Metadata::new();
            metadata.insert(PERSONAL.to_owned(), value);
            metadata.insert("tier".to_owned(), json!("gold"));
            metadata
        };
        let mut keys = Keys::default();
        keys.0.insert("c-1".to_owned(), Some(key));
        let mut opened = metadata(json!({"subject": "c-1", "sealed": sealed}));
        keys.open(&mut opened);
        assert_eq!(opened, metadata(json!({"subject": "c-1", "data": "Ada"})));

        keys.0.insert("c-1".to_owned(), None);
        let mut erased = metadata(json!({"subject": "c-1", "sealed": sealed}));
        keys.open(&mut erased);
        assert_eq!(erased, metadata(json!({"subject": "c-1", "erased": true})));

        // Anything else under the key is left as it is, and is not a sealed form.
        for value in [
            json!(null),
            json!({"subject": "c-1", "sealed": sealed, "data": "Ada"}),
            json!({"subject": "c 1", "sealed": sealed}),
            json!({"subject": "c-1", "sealed": "not base64!"}),
        ] {
            assert_eq!(sealed_form(&value), None, "{value}");
            let mut other = metadata(value.clone());
            keys.open(&mut other);
            assert_eq!(other, metadata(value));
        }
        Ok(())
    }
}
