//! The verifier's first stage, on a task of its own: read each record, recompute its hash and
//! decode its event. What is left for the verifying loop is sequential by nature (links,
//! the Merkle frontier, the replay), so on two cores the two halves run side by side.

use ledger::log::{Hash, Hashed, JsonField, RecordFields};
use ledger::{Event, canonical};
use partida_eventstore::{RecordLine, StoredEvent};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::replay::{self, Decoded, Placed};
use crate::source::{Source, SourceError};
use crate::spare::Spare;

/// Blocks being read at once, ahead of the verifying loop: enough to keep every worker busy,
/// few enough that memory stays constant (a block is about 256 KiB of lines).
const AHEAD: usize = 16;

/// A record with its hash recomputed from its fields and its event decoded: all the verifying
/// loop needs, and nothing it would have to free (no JSON tree crosses the threads).
pub struct Prepared {
    pub placed: Placed,
    pub hashed: Hashed,
    /// The hash the record claims.
    pub hash: Hash,
    /// The event, checked to belong to the record's stream, with its command.
    pub event: Result<Decoded, String>,
}

impl Prepared {
    fn from_row(record: StoredEvent) -> Self {
        Self {
            placed: Placed::of(&record),
            hashed: Hashed::from(&record.fields()),
            hash: record.hash,
            event: replay::decode_row(&record),
        }
    }

    /// Reads an export line. `data` and `metadata` are hashed as they are written when that is
    /// already their canonical form (an export is written so), and parsed only when not.
    fn from_line(line: &str) -> Result<Self, String> {
        let record = RecordLine::parse(line)?;
        let (mut data_value, mut metadata_value) = (None, None);
        let fields = RecordFields {
            position: record.position,
            event_id: *record.event_id.as_bytes(),
            stream_id: &record.stream_id,
            stream_version: record.stream_version,
            event_type: &record.event_type,
            schema_version: record.schema_version,
            data: json_field(record.data, record.canonical, &mut data_value)?,
            metadata: json_field(record.metadata, record.canonical, &mut metadata_value)?,
            recorded_at: record.recorded_at_micros,
            prev_hash: &record.prev_hash,
        };
        let hashed = Hashed::from(&fields);
        let event = Event::decode_text(&record.event_type, record.schema_version, record.data);
        Ok(Self {
            placed: Placed {
                position: record.position,
                stream_version: record.stream_version,
                recorded_at_micros: record.recorded_at_micros,
            },
            hashed,
            hash: record.hash,
            event: replay::in_stream(record.position, &record.stream_id, event),
        })
    }
}

/// `text` as it is hashed: itself when canonical (`known` so, or found so), else its value,
/// parsed into `slot`.
fn json_field<'a>(text: &'a str, known: bool, slot: &'a mut Option<Value>) -> Result<JsonField<'a>, String> {
    if known || canonical::is_canonical(text.as_bytes()) {
        return Ok(JsonField::Canonical(text.as_bytes()));
    }
    let value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(JsonField::Value(slot.insert(value)))
}

/// Prepared records, a block at a time, in the order of the source.
pub struct Batches {
    blocks: mpsc::Receiver<JoinHandle<Result<Vec<Prepared>, SourceError>>>,
    spare: Spare<Prepared>,
}

impl Batches {
    /// The next block's records; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Vec<Prepared>, SourceError>> {
        let block = self.blocks.recv().await?;
        Some(
            block
                .await
                .unwrap_or_else(|e| Err(SourceError::Unreadable(format!("reading a block stopped: {e}")))),
        )
    }

    /// Gives a batch's room back for a later block.
    pub fn recycle(&self, batch: Vec<Prepared>) {
        self.spare.give(batch);
    }
}

/// Starts reading `source`: each block is prepared on a task of its own, so blocks are read on
/// every worker thread at once, and come in the source's order (an unreadable input as the
/// last). The task gives the source back when the input ends or the batches are dropped.
pub fn spawn(mut source: Source) -> (Batches, JoinHandle<Source>) {
    let (sender, blocks) = mpsc::channel(AHEAD);
    let spare = Spare::default();
    let batches = Batches {
        blocks,
        spare: spare.clone(),
    };
    let reader = tokio::spawn(async move {
        loop {
            let (prepared, unreadable) = match source.next_block().await {
                Ok(Some(block)) => {
                    let records = spare.take();
                    let read = async move { block.read_into(records, Prepared::from_line, Prepared::from_row) };
                    (tokio::spawn(read), false)
                }
                Ok(None) => return source,
                Err(error) => (tokio::spawn(async move { Err(error) }), true),
            };
            if sender.send(prepared).await.is_err() || unreadable {
                return source;
            }
        }
    });
    (batches, reader)
}
