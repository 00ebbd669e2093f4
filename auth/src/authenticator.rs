//! From an `Authorization` header to a [`Principal`]: API tokens looked up by hash (cached for a
//! few seconds, so a hot path costs no query), JWTs verified offline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::jwt::{JwtError, JwtVerifier};
use crate::rate::RateLimiter;
use crate::{Principal, Role, token};

/// Authentication settings shared by both APIs.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthConfig {
    /// Seconds a looked-up API token is trusted before it is looked up again: the longest a
    /// revoked token keeps working.
    #[arg(long, env = "PARTIDA_AUTH_CACHE_SECS", default_value_t = 10)]
    pub auth_cache_secs: u64,
    /// A file holding the HS256 secret JWTs may be signed with (at least 32 bytes).
    #[arg(long, env = "PARTIDA_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// A PEM file holding the RSA public key JWTs may be signed with (RS256).
    #[arg(long, env = "PARTIDA_JWT_RS256_PUBLIC_KEY_FILE")]
    pub jwt_rs256_public_key_file: Option<PathBuf>,
    /// The `iss` every JWT must carry.
    #[arg(long, env = "PARTIDA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` every JWT must carry.
    #[arg(long, env = "PARTIDA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Requests per second one credential may sustain on one instance (0: unlimited); beyond it,
    /// `429 rate_limited` with `Retry-After`.
    #[arg(long, env = "PARTIDA_RATE_LIMIT_PER_SEC", default_value_t = 1_000)]
    pub rate_limit_per_sec: u32,
    /// Requests one credential may send at once before the rate applies.
    #[arg(long, env = "PARTIDA_RATE_LIMIT_BURST", default_value_t = 2_000)]
    pub rate_limit_burst: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            auth_cache_secs: 10,
            jwt_hs256_secret_file: None,
            jwt_rs256_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            rate_limit_per_sec: 1_000,
            rate_limit_burst: 2_000,
        }
    }
}

/// Why a request is not authenticated (401). The message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a credential: `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the token is unknown, revoked or expired")]
    Rejected,
    #[error("the JWT was refused: {0}")]
    JwtRefused(String),
    /// The token store could not be reached: 503, not 401.
    #[error("credentials cannot be checked right now")]
    Unavailable,
}

/// Beyond this many cached verdicts the cache starts over.
const CACHE_LIMIT: usize = 10_000;

/// A token's hash to its principal (`None`: found invalid), and when that was decided.
type Verdicts = HashMap<[u8; 32], (Option<Principal>, Instant)>;

/// What one lookup of a token found, shared by every request that waited for it.
type Lookup = Arc<OnceCell<Result<Option<Principal>, AuthError>>>;

/// Checks credentials. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    pool: PgPool,
    jwt: Option<Arc<JwtVerifier>>,
    ttl: Duration,
    cache: Arc<Mutex<Verdicts>>,
    /// The lookups under way, one per token hash. When a busy token's verdict expires, every
    /// request then in flight misses the cache at once: they wait for one query instead of
    /// each sending its own, which under a burst would take every connection of the pool.
    lookups: Arc<Mutex<HashMap<[u8; 32], Lookup>>>,
    /// Lookups sent to the token store so far.
    sent: Arc<AtomicU64>,
    limiter: RateLimiter,
}

impl Authenticator {
    /// Reads the configured key files; fails on unreadable or invalid key material.
    pub fn new(config: &AuthConfig, pool: PgPool) -> anyhow::Result<Self> {
        let read = |path: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            path.as_ref()
                .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
                .transpose()
        };
        let secret = read(&config.jwt_hs256_secret_file)?.map(|s| s.trim_ascii().to_vec());
        let public = read(&config.jwt_rs256_public_key_file)?;
        let jwt = if secret.is_some() || public.is_some() {
            let issuer = config
                .jwt_issuer
                .clone()
                .context("PARTIDA_JWT_ISSUER is required with JWT keys")?;
            let audience = config
                .jwt_audience
                .clone()
                .context("PARTIDA_JWT_AUDIENCE is required with JWT keys")?;
            Some(Arc::new(JwtVerifier::new(
                secret.as_deref(),
                public.as_deref(),
                issuer,
                audience,
            )?))
        } else {
            None
        };
        Ok(Self {
            pool,
            jwt,
            ttl: Duration::from_secs(config.auth_cache_secs),
            cache: Arc::default(),
            lookups: Arc::default(),
            sent: Arc::default(),
            limiter: RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
        })
    }

    /// Counts a request against `principal`'s rate; `Err(wait)` when it is over.
    pub fn limit(&self, principal: &Principal) -> Result<(), Duration> {
        self.limiter.check(&principal.credential)
    }

    /// The caller named by an `Authorization` header value, if any.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
        let (scheme, credential) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let credential = credential.trim();
        if credential.starts_with(token::PREFIX) {
            self.api_token(credential).await
        } else if credential.split('.').count() == 3 {
            self.jwt(credential)
        } else {
            Err(AuthError::Rejected)
        }
    }

    fn jwt(&self, credential: &str) -> Result<Principal, AuthError> {
        let verifier = self
            .jwt
            .as_ref()
            .ok_or(AuthError::JwtRefused(JwtError::NotConfigured.to_string()))?;
        let (subject, role) = verifier
            .verify(credential)
            .map_err(|e| AuthError::JwtRefused(e.to_string()))?;
        Ok(Principal {
            subject,
            role,
            credential: format!("jwt:{}", verifier.issuer()),
        })
    }

    async fn api_token(&self, credential: &str) -> Result<Principal, AuthError> {
        if !token::well_formed(credential) {
            return Err(AuthError::Rejected);
        }
        let key = token::hash(credential);
        if let Some(verdict) = self.cached(&key) {
            return verdict.ok_or(AuthError::Rejected);
        }
        let lookup = {
            let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
            // A request dropped mid-lookup leaves its entry behind: bound them as the cache is
            // (forgetting a lookup under way only stops later requests from sharing it).
            if lookups.len() >= CACHE_LIMIT {
                lookups.clear();
            }
            lookups.entry(key).or_default().clone()
        };
        let verdict = lookup.get_or_init(|| self.look_up(key)).await.clone();
        // The first request past the lookup retires it; later misses start a new one.
        let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        if lookups.get(&key).is_some_and(|current| Arc::ptr_eq(current, &lookup)) {
            lookups.remove(&key);
        }
        verdict?.ok_or(AuthError::Rejected)
    }

    /// How many token lookups were started (each takes a connection and sends one query).
    pub fn token_lookups(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Queries the token store and caches what it says.
    async fn look_up(&self, key: [u8; 32]) -> Result<Option<Principal>, AuthError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let found = token::lookup(&self.pool, &key).await.map_err(|error| {
            tracing::warn!(%error, "looking up an API token failed");
            AuthError::Unavailable
        })?;
        let verdict = found.and_then(|(id, subject, role)| {
            let role = role.parse::<Role>().ok()?;
            Some(Principal {
                subject,
                role,
                credential: format!("token:{id}"),
            })
        });
        self.remember(key, verdict.clone());
        Ok(verdict)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Option<Principal>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(verdict, _)| verdict.clone())
    }

    fn remember(&self, key: [u8; 32], verdict: Option<Principal>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, (verdict, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor, PgConnection};

    use super::*;

    #[tokio::test]
    async fn requests_missing_the_cache_together_share_one_lookup() {
        let db = partida_testkit::TestDb::new().await;
        let issued = token::create(db.pool(), "ops@example.com", Role::Writer, None)
            .await
            .unwrap();
        let authenticator = Authenticator::new(&AuthConfig::default(), db.pool().clone()).unwrap();
        // Holds every lookup back, so the requests below all miss the cache while one is pending.
        let mut blocker = PgConnection::connect(db.url()).await.unwrap();
        blocker
            .execute("BEGIN; LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let header = format!("Bearer {}", issued.token);
        let requests: Vec<_> = (0..32)
            .map(|_| {
                let (authenticator, header) = (authenticator.clone(), header.clone());
                tokio::spawn(async move { authenticator.authenticate(Some(header.as_bytes())).await })
            })
            .collect();
        let mut watcher = PgConnection::connect(db.url()).await.unwrap();
        let waiting_since = std::time::Instant::now();
        loop {
            assert!(
                waiting_since.elapsed() < Duration::from_secs(30),
                "no token lookup ever waited for the lock"
            );
            let blocked: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if blocked > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        blocker.execute("COMMIT").await.unwrap();
        for request in requests {
            let principal = request.await.unwrap().unwrap();
            assert_eq!(principal.subject, "ops@example.com");
        }
        assert_eq!(authenticator.token_lookups(), 1);
    }
}
