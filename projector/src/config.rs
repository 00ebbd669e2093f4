use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(name = "projector", about = "Partida's projector")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Replay the log into a fresh generation of a projection's tables, then switch readers to it;
    /// or (`write-side`) rewrite the write-side state that decides overdrafts from the log.
    Rebuild {
        /// What to rebuild: `ledger` (the read tables) or `write-side`.
        projection: String,
        /// Events per transaction while replaying. Account rows are kept in memory and reading,
        /// computing and writing overlap, so the size matters little (measured on a 103,551-event
        /// log: 2.89 s at 5,000, 2.82 s at 20,000).
        #[arg(long, env = "PARTIDA_REBUILD_BATCH", default_value_t = 20_000)]
        batch: i64,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Health, readiness and metrics.
    #[arg(long, env = "PROJECTOR_ADDR", default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,
    /// The primary: the projector writes read tables and takes its leadership lock there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Events applied per transaction.
    #[arg(long, env = "PARTIDA_PROJECTOR_BATCH", default_value_t = 5_000)]
    pub batch_size: i64,
    /// How often to look for new events when no notification arrives.
    #[arg(long, env = "PARTIDA_PROJECTOR_POLL_MS", default_value_t = 1_000)]
    pub poll_ms: u64,
    /// The longest the projector lets events gather between catch-ups. A wake-up sooner after the
    /// last catch-up began than twice that catch-up's length, or than this if shorter, waits out
    /// the rest. Under load this makes fewer, larger transactions (less work per event, more of
    /// the machine left to the writer) for at most this much more lag; at light load the wait is
    /// as short as the catch-ups, and an event after a quiet spell is applied at once.
    #[arg(long, env = "PARTIDA_PROJECTOR_GATHER_MS", default_value_t = 20)]
    pub gather_ms: u64,
    /// How often a standby tries to take the lead.
    #[arg(long, env = "PARTIDA_PROJECTOR_STANDBY_MS", default_value_t = 500)]
    pub standby_ms: u64,
    /// Wake on LISTEN/NOTIFY (off: rely on polling alone).
    #[arg(long, env = "PARTIDA_PROJECTOR_LISTEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub listen_notifications: bool,
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            batch_size: 5_000,
            poll_ms: 1_000,
            gather_ms: 20,
            standby_ms: 100,
            listen_notifications: true,
            log_json: false,
        }
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(1))
    }

    /// How long after a catch-up began the next one may start, given how long it took: twice
    /// that (so the follower is busy at most half the time), and never more than the gather
    /// interval. A quick catch-up is followed by a short wait; a slow one, under load, by the
    /// whole interval, which makes fewer, larger transactions.
    pub(crate) fn gather_after(&self, took: Duration) -> Duration {
        Duration::from_millis(self.gather_ms).min(took.saturating_mul(2))
    }

    pub(crate) fn standby_interval(&self) -> Duration {
        Duration::from_millis(self.standby_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_the_catch_up_up_to_the_gather() {
        let config = Config::for_database("postgres://unused");
        let ms = Duration::from_millis;
        assert_eq!(config.gather_after(ms(0)), ms(0), "nothing to apply: no wait");
        assert_eq!(config.gather_after(ms(3)), ms(6), "twice a quick catch-up");
        assert_eq!(config.gather_after(ms(10)), ms(20));
        assert_eq!(config.gather_after(ms(80)), ms(20), "never past the gather");
        let off = Config { gather_ms: 0, ..config };
        assert_eq!(off.gather_after(ms(80)), ms(0), "0 applies on every wake-up");
    }
}
