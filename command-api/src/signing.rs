//! Signed checkpoints from the write side: on a timer and on demand, one round at a time
//! across instances (the round holds an advisory lock), each new checkpoint published outside
//! the database too (a directory of files and a webhook), because whoever holds the database and
//! the key could rewrite both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use partida_eventstore::checkpoint::{PublicKey, SignError, Signer, StoredCheckpoint};
use sqlx::PgPool;
use tokio::sync::Notify;

pub(crate) struct Signing {
    signer: Signer,
    pool: PgPool,
    interval: Duration,
    publish_dir: Option<PathBuf>,
    webhook: Option<String>,
    http: reqwest::Client,
    wake: Notify,
}

impl Signing {
    pub fn new(
        signer: Signer,
        pool: PgPool,
        interval: Duration,
        publish_dir: Option<PathBuf>,
        webhook: Option<String>,
    ) -> Self {
        Self {
            signer,
            pool,
            interval,
            publish_dir,
            webhook,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            wake: Notify::new(),
        }
    }

    /// One round now: the new checkpoint (published), or `None` when nothing new was written.
    pub async fn round(&self) -> Result<Option<StoredCheckpoint>, SignError> {
        self.signer.register(&self.pool).await?;
        let signed = self.signer.sign_round(&self.pool).await?;
        if let Some(checkpoint) = &signed {
            tracing::info!(position = checkpoint.position, key_id = %checkpoint.key_id, "checkpoint signed");
            self.publish(checkpoint).await;
        }
        Ok(signed)
    }

    /// The latest stored checkpoint, if any.
    pub async fn latest(&self) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        partida_eventstore::checkpoint::latest(&self.pool).await
    }

    /// Signs every `interval` while the log grows. A failed round is logged and retried at the
    /// next tick.
    pub async fn run(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(self.interval, self.wake.notified()).await;
            if let Err(error) = self.round().await {
                tracing::warn!(%error, "signing round failed");
            }
        }
    }

    /// Writes the checkpoint and the key list into the publication directory, and posts it to
    /// the webhook. Publication failures are logged: the checkpoint is stored either way.
    async fn publish(&self, checkpoint: &StoredCheckpoint) {
        let keys = match partida_eventstore::checkpoint::public_keys(&self.pool).await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::warn!(%error, "reading the public keys to publish failed");
                vec![self.signer.public()]
            }
        };
        if let Some(dir) = &self.publish_dir
            && let Err(error) = write_files(dir, checkpoint, &keys).await
        {
            tracing::warn!(%error, dir = %dir.display(), "publishing the checkpoint to the directory failed");
        }
        if let Some(url) = &self.webhook {
            let body = serde_json::json!({"checkpoint": checkpoint, "key": self.signer.public()});
            let sent = self.http.post(url).json(&body).send().await;
            match sent.and_then(reqwest::Response::error_for_status) {
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "posting the checkpoint to the webhook failed"),
            }
        }
    }
}

/// `checkpoint-<position>.json` and `keys.json`, each written to a temporary name and renamed,
/// so a reader never sees half a file.
async fn write_files(dir: &std::path::Path, checkpoint: &StoredCheckpoint, keys: &[PublicKey]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let files = [
        (
            format!("checkpoint-{:020}.json", checkpoint.position),
            serde_json::to_vec_pretty(checkpoint)?,
        ),
        (
            "keys.json".to_owned(),
            serde_json::to_vec_pretty(&serde_json::json!({ "keys": keys }))?,
        ),
    ];
    for (name, bytes) in files {
        // A name of its own: replicas sharing the directory (one volume, one bucket) publish
        // at the same moments, and a shared temporary name would let them tear each other's file.
        let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, dir.join(name)).await?;
    }
    Ok(())
}
