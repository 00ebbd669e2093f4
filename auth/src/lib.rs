//! Who may call Partida's APIs, and as whom.
//!
//! Callers present `Authorization: Bearer <credential>`: an API token (`ptk_...`, created and
//! revoked with `command-api tokens`, stored only as a hash) or a JWT from a configured single
//! sign-on issuer. Each route asks for one [`Permission`]; the caller's [`Role`] grants it or the
//! request ends in 403. A missing or invalid credential is 401, and the two never mix.
//!
//! The [`Principal`] a request ran as is recorded in the metadata of the events it wrote.

mod authenticator;
pub mod cli;
mod http;
pub mod jwt;
mod rate;
mod role;
pub mod token;

pub use authenticator::{AuthConfig, AuthError, Authenticator};
pub use http::{WhoAmI, guarded, whoami_router};
pub use role::{Permission, Role};

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: a token's subject or a JWT's `sub`.
    pub subject: String,
    pub role: Role,
    /// Which credential: `token:<id>` or `jwt:<issuer>`.
    pub credential: String,
}
