//! Identifiers and quantities that can only hold valid values (parse, don't validate).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Why a string or number is not a valid identifier or quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be 1 to {max} characters of [A-Za-z0-9:._-]")]
    BadId { max: usize },
    #[error("must be 1 to 16 characters of [A-Z0-9_], starting with a letter")]
    BadAssetCode,
    #[error("must be a positive integer of minor units")]
    NotPositive,
    #[error("must be between 0 and {max}")]
    ScaleOutOfRange { max: u8 },
}

/// Ids are ASCII, so bytes are checked rather than characters (any byte of a multi-byte
/// character fails).
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-')
}

macro_rules! client_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: an id is cloned from command to event to state (and a replay
        /// does that for every event of the log), so a clone counts a reference instead of
        /// allocating.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The longest id accepted.
            pub const MAX_LEN: usize = 128;

            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                Self::from_text(&value.into())
            }

            fn from_text(value: &str) -> Result<Self, IdError> {
                if value.is_empty() || value.len() > Self::MAX_LEN || !value.bytes().all(is_id_byte) {
                    return Err(IdError::BadId { max: Self::MAX_LEN });
                }
                Ok(Self(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdVisitor($name::from_text))
            }
        }
    };
}

/// Reads an id from a string, borrowed where the input allows, without an intermediate
/// `String`; refuses anything else as `String` would.
struct IdVisitor<T>(fn(&str) -> Result<T, IdError>);

impl<T> de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }
}

client_id!(
    /// An account id chosen by the client, e.g. `liabilities:customers:alice`.
    AccountId
);
client_id!(
    /// A transfer id chosen by the client; it is the transfer's idempotency key.
    TransferId
);
client_id!(
    /// A data subject: the person whose personal data metadata may carry, sealed under the
    /// subject's own key, e.g. `customer-42`. A pseudonym, never the person's name: the log keeps
    /// it forever.
    SubjectId
);

/// A registered asset's code, e.g. `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetCode(String);

impl AssetCode {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let mut chars = value.chars();
        let valid = value.len() <= 16
            && chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(value))
        } else {
            Err(IdError::BadAssetCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AssetCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AssetCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The number of decimal places of an asset's minor unit (`EUR` has 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Scale(u8);

impl Scale {
    /// i64 holds 18 full decimal digits.
    pub const MAX: u8 = 18;

    pub fn new(value: u8) -> Result<Self, IdError> {
        if value <= Self::MAX {
            Ok(Self(value))
        } else {
            Err(IdError::ScaleOutOfRange { max: Self::MAX })
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Scale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(u8::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// A strictly positive amount of an asset's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Amount(i64);

impl Amount {
    pub fn new(value: i64) -> Result<Self, IdError> {
        if value > 0 {
            Ok(Self(value))
        } else {
            Err(IdError::NotPositive)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(i64::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// Microseconds since the Unix epoch: the log's clock resolution, which PostgreSQL stores exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_accept_the_documented_alphabet_only() {
        assert!(AccountId::parse("liabilities:customers:alice.eur_1-x").is_ok());
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("a b").is_err());
        assert!(AccountId::parse("ä").is_err());
        assert!(AccountId::parse("a".repeat(128)).is_ok());
        assert!(AccountId::parse("a".repeat(129)).is_err());
    }

    #[test]
    fn asset_codes_are_short_upper_case_words() {
        assert!(AssetCode::parse("EUR").is_ok());
        assert!(AssetCode::parse("USDC_2").is_ok());
        assert!(AssetCode::parse("eur").is_err());
        assert!(AssetCode::parse("1EUR").is_err());
        assert!(AssetCode::parse("A".repeat(17)).is_err());
    }

    #[test]
    fn amounts_are_positive_and_scales_bounded() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(-1).is_err());
        assert_eq!(Amount::new(i64::MAX).map(Amount::get), Ok(i64::MAX));
        assert!(Scale::new(18).is_ok());
        assert!(Scale::new(19).is_err());
    }
}
