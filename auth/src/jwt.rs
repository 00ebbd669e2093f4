//! JWTs from a single sign-on provider, as an alternative to API tokens: HS256 with a shared
//! secret or RS256 with the provider's public key, always with a configured issuer and audience.
//! The subject is `sub`; the role is the `role` claim (one of the API roles).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::Role;

/// The keys and expectations JWTs are checked against.
pub struct JwtVerifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    role: String,
}

/// Why a JWT was refused; said to the caller in general terms only.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("no JWT keys are configured")]
    NotConfigured,
    #[error("the JWT is invalid: {0}")]
    Invalid(String),
}

impl JwtVerifier {
    /// From the configured key material. At least one of `hs256_secret` and `rs256_public_pem`.
    pub fn new(
        hs256_secret: Option<&[u8]>,
        rs256_public_pem: Option<&[u8]>,
        issuer: String,
        audience: String,
    ) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = hs256_secret {
            anyhow::ensure!(secret.len() >= 32, "the HS256 secret must be at least 32 bytes");
            keys.push((Algorithm::HS256, DecodingKey::from_secret(secret)));
        }
        if let Some(pem) = rs256_public_pem {
            let key = DecodingKey::from_rsa_pem(pem).map_err(|e| anyhow::anyhow!("the RS256 public key: {e}"))?;
            keys.push((Algorithm::RS256, key));
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "a JWT issuer needs an HS256 secret or an RS256 public key"
        );
        anyhow::ensure!(
            !issuer.is_empty() && !audience.is_empty(),
            "JWTs need an issuer and an audience"
        );
        Ok(Self { keys, issuer, audience })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject and role of a valid JWT: signed by a configured key with the algorithm that
    /// key is for (the header cannot pick another), from the issuer, for the audience, unexpired.
    pub fn verify(&self, token: &str) -> Result<(String, Role), JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let (algorithm, key) = self
            .keys
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .ok_or_else(|| JwtError::Invalid(format!("{:?} is not accepted", header.alg)))?;
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let role = data.claims.role.parse::<Role>().map_err(JwtError::Invalid)?;
        let subject = data.claims.sub.trim();
        if subject.is_empty() || subject.chars().count() > 200 {
            return Err(JwtError::Invalid("sub must be 1 to 200 characters".into()));
        }
        Ok((subject.to_owned(), role))
    }
}
