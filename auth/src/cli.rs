//! `command-api tokens ...`: create, list and revoke API tokens against the primary.
//!
//! `create` prints the token alone on stdout (so `TOKEN=$(command-api tokens create ...)` works)
//! and what it is on stderr; the token is never shown again.

use anyhow::Context;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Role, token};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (once).
    Create {
        /// Who the token acts as; recorded in the metadata of every event it writes.
        #[arg(long)]
        subject: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Days until the token expires; never when left out.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Print the token and its details as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List every token (without secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; every API refuses it within PARTIDA_AUTH_CACHE_SECS.
    Revoke { id: Uuid },
}

pub async fn run(database_url: &str, command: TokensCommand) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .context("connecting to the database")?;
    match command {
        TokensCommand::Create {
            subject,
            role,
            expires_in_days,
            json,
        } => {
            let expires_at = expires_in_days.map(|days| OffsetDateTime::now_utc() + time::Duration::days(days.into()));
            let issued = token::create(&pool, &subject, role, expires_at).await?;
            if json {
                println!("{}", serde_json::to_string(&issued)?);
            } else {
                eprintln!(
                    "created token {} for {} ({}); it is shown only now:",
                    issued.id, issued.subject, issued.role
                );
                println!("{}", issued.token);
            }
        }
        TokensCommand::List { json } => {
            let tokens = token::list(&pool).await?;
            if json {
                println!("{}", serde_json::to_string(&tokens)?);
            } else {
                for t in tokens {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked",
                        (None, Some(at)) if at <= OffsetDateTime::now_utc() => "expired",
                        _ => "active",
                    };
                    println!("{}  {:<8} {:<8} {}", t.id, t.role, state, t.subject);
                }
            }
        }
        TokensCommand::Revoke { id } => {
            anyhow::ensure!(token::revoke(&pool, id).await?, "no active token {id}");
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
