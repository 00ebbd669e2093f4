//! The verifier's first stage, on a task of its own: read each record, recompute its hash and
//! decode its event. What is left for the verifying loop is sequential by nature (links,
//! the Merkle frontier, the replay), so on two cores the two halves run side by side.

use ledger::Event;
use ledger::log::Hashed;
use partida_eventstore::StoredEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::replay;
use crate::source::{Source, SourceError};

/// Records per batch: large enough that handing a batch over costs nothing per record, small
/// enough that memory stays constant.
const BATCH: usize = 512;
/// Batches the reader may be ahead by.
const AHEAD: usize = 8;

/// A record with its hash recomputed from its fields and its event decoded.
pub struct Prepared {
    pub record: StoredEvent,
    pub hashed: Hashed,
    pub event: Result<Event, String>,
}

impl Prepared {
    fn new(record: StoredEvent) -> Self {
        let hashed = Hashed::from(&record.fields());
        let event = replay::decode(&record);
        Self { record, hashed, event }
    }
}

/// Starts reading `source`; the batches come in order on the receiver, an unreadable input as
/// its last item. The task gives the source back when the input ends or the receiver is dropped.
pub fn spawn(mut source: Source) -> (mpsc::Receiver<Result<Vec<Prepared>, SourceError>>, JoinHandle<Source>) {
    let (sender, receiver) = mpsc::channel(AHEAD);
    let reader = tokio::spawn(async move {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut ended = false;
            while batch.len() < BATCH {
                match source.next().await {
                    Ok(Some(record)) => batch.push(Prepared::new(record)),
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return source;
                    }
                }
            }
            if (!batch.is_empty() && sender.send(Ok(batch)).await.is_err()) || ended {
                return source;
            }
        }
    });
    (receiver, reader)
}
