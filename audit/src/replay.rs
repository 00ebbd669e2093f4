//! The replay: every event re-decided by the domain from the state before it. An event the
//! domain would not have written exactly so (a broken limit, a posting to a frozen account, a
//! reversal that does not mirror its original or comes twice, a repeat, a wrong stream version)
//! fails, naming its position; at the end, double entry is checked per asset.

use std::collections::BTreeMap;

use ledger::{
    AccountLifecycle, AccountStatus, Command, DecodeError, Event, HoldAction, Metadata, PostTransfer, RegisterAsset,
    ResolveHold, SetMetadata, State, Subject, Timestamp, decide,
};
use partida_eventstore::StoredEvent;

#[derive(Default)]
pub struct Replay {
    state: State,
    /// How many sealed values each subject has in the log.
    sealed: BTreeMap<String, usize>,
}

/// What the log holds of personal data (docs/PERSONAL-DATA.md). The auditor reads none of it:
/// it counts the sealed values, and those of erased subjects are unreadable for everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PersonalData {
    /// Values sealed under `metadata.personal`, and the subjects they belong to.
    pub sealed_values: usize,
    pub subjects: usize,
    /// Subjects erased (their keys destroyed), and how many of the sealed values were theirs.
    pub erased_subjects: usize,
    pub erased_values: usize,
}

/// One asset's totals after the replay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AssetTotals {
    pub asset: String,
    pub scale: u8,
    pub accounts: usize,
    pub posted: i64,
    pub debits: i128,
    pub credits: i128,
    /// What open holds reserve at the end of the log.
    pub held: i64,
    pub pending_debits: i128,
    pub pending_credits: i128,
}

/// Freeing a replayed state is freeing every transfer of the log one by one: a tenth of a
/// verification's time. Nothing waits for it, so it happens on a thread of its own (and a
/// process that exits first leaves it to the operating system).
impl Drop for Replay {
    fn drop(&mut self) {
        let state = std::mem::take(&mut self.state);
        // Should the thread not start, the closure and the state are dropped here instead.
        let _ = std::thread::Builder::new()
            .name("replay-free".into())
            .spawn(move || drop(state));
    }
}

impl Replay {
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Re-decides `record`'s event and applies it.
    pub fn apply(&mut self, record: &StoredEvent) -> Result<(), String> {
        self.apply_decoded(Placed::of(record), decode_row(record))
    }

    /// [`apply`](Self::apply) with the event already decoded and placed in its stream by
    /// [`in_stream`] (on another thread).
    pub fn apply_decoded(&mut self, at: Placed, decoded: Result<Decoded, String>) -> Result<(), String> {
        let position = at.position;
        let Decoded { mut event, command } = decoded?;
        let event_type = event.event_type();
        let stream = event.stream_id();
        let version = self.state.stream_version(&stream) + 1;
        if at.stream_version != version {
            return Err(format!(
                "position {position}: stream {stream} version {} where the replay expects {version}",
                at.stream_version
            ));
        }
        match decide(&self.state, &command, Timestamp(at.recorded_at_micros)) {
            Ok(decided) if decided.len() == 1 && decided[0] == event => {}
            Ok(decided) if decided.is_empty() => {
                return Err(format!(
                    "position {position}: {event_type} repeats an earlier command; the domain writes nothing for it"
                ));
            }
            Ok(_) => {
                return Err(format!(
                    "position {position}: the domain decides other events for this {event_type}"
                ));
            }
            Err(rejection) => {
                return Err(format!(
                    "position {position}: the domain refuses this {event_type}: {rejection}"
                ));
            }
        }
        if let Some(metadata) = event.metadata_mut() {
            self.count_personal(position, metadata)?;
        }
        self.state.apply_owned(event);
        Ok(())
    }

    /// Personal data in the log must be sealed: a `personal` value that is neither sealed nor
    /// `null` (a patch removing it) is personal data in the clear, which no erasure can reach.
    fn count_personal(&mut self, position: i64, metadata: &Metadata) -> Result<(), String> {
        let Some(value) = metadata.get(partida_eventstore::personal::PERSONAL) else {
            return Ok(());
        };
        if value.is_null() {
            return Ok(());
        }
        let subject = partida_eventstore::personal::sealed_form(value)
            .map(|(subject, _)| subject)
            .ok_or_else(|| format!("position {position}: metadata.personal holds personal data that is not sealed"))?;
        *self.sealed.entry(subject.to_owned()).or_default() += 1;
        Ok(())
    }

    /// The personal data the log holds, as far as the replay went.
    pub fn personal_data(&self) -> PersonalData {
        PersonalData {
            sealed_values: self.sealed.values().sum(),
            subjects: self.sealed.len(),
            erased_subjects: self.state.erased.len(),
            erased_values: self
                .state
                .erased
                .iter()
                .filter_map(|subject| self.sealed.get(subject.as_str()))
                .sum(),
        }
    }

    /// Double entry per asset: the debits and the credits of its accounts each equal what was
    /// posted in it. Returns every asset that fails, and the totals of all.
    pub fn finish(&self) -> (Vec<AssetTotals>, Vec<String>) {
        let mut totals: BTreeMap<String, AssetTotals> = BTreeMap::new();
        for (code, asset) in &self.state.assets {
            totals.insert(
                code.to_string(),
                AssetTotals {
                    asset: code.to_string(),
                    scale: asset.scale.get(),
                    accounts: 0,
                    posted: asset.posted,
                    debits: 0,
                    credits: 0,
                    held: asset.held,
                    pending_debits: 0,
                    pending_credits: 0,
                },
            );
        }
        let mut problems = Vec::new();
        for (id, account) in &self.state.accounts {
            let Some(total) = totals.get_mut(account.asset.as_str()) else {
                problems.push(format!(
                    "account {id} holds {}, which was never registered",
                    account.asset
                ));
                continue;
            };
            total.accounts += 1;
            total.debits += i128::from(account.debits);
            total.credits += i128::from(account.credits);
            total.pending_debits += i128::from(account.pending_debits);
            total.pending_credits += i128::from(account.pending_credits);
            let (debits, credits) = (i128::from(account.debits), i128::from(account.credits));
            let pending = (i128::from(account.pending_debits), i128::from(account.pending_credits));
            if account.flags.debits_must_not_exceed_credits && debits + pending.0 > credits {
                problems.push(format!("account {id} ends overdrawn"));
            }
            if account.flags.credits_must_not_exceed_debits && credits + pending.1 > debits {
                problems.push(format!("account {id} ends over-credited"));
            }
        }
        for total in totals.values() {
            if total.debits != total.credits || total.debits != i128::from(total.posted) {
                problems.push(format!(
                    "asset {}: debits {} and credits {} of its accounts do not both equal the {} posted",
                    total.asset, total.debits, total.credits, total.posted
                ));
            }
            if total.pending_debits != total.pending_credits || total.pending_debits != i128::from(total.held) {
                problems.push(format!(
                    "asset {}: pending debits {} and credits {} of its accounts do not both equal the {} held",
                    total.asset, total.pending_debits, total.pending_credits, total.held
                ));
            }
        }
        (totals.into_values().collect(), problems)
    }
}

/// Where a record sits: what the replay checks besides its event.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub position: i64,
    pub stream_version: i64,
    pub recorded_at_micros: i64,
}

impl Placed {
    pub fn of(record: &StoredEvent) -> Self {
        Self {
            position: record.position,
            stream_version: record.stream_version,
            recorded_at_micros: record.recorded_at_micros,
        }
    }
}

/// A record's event, and the command that, decided from the state before it, should yield
/// exactly that event.
pub struct Decoded {
    pub event: Event,
    pub command: Command,
}

/// [`in_stream`] for a record read from the database or deserialized whole.
pub fn decode_row(record: &StoredEvent) -> Result<Decoded, String> {
    let event = Event::decode(&record.event_type, record.schema_version, &record.data);
    in_stream(record.position, &record.stream_id, event)
}

/// The event a record at `position` stores in stream `stream_id`, once it is read, with its
/// command; or why it cannot be read, belongs to another stream, or is malformed.
pub fn in_stream(position: i64, stream_id: &str, event: Result<Event, DecodeError>) -> Result<Decoded, String> {
    let event = event.map_err(|e| format!("position {position}: the event cannot be read: {e}"))?;
    if !event.stream_id().is(stream_id) {
        return Err(format!(
            "position {position}: stored in stream {stream_id} but the event belongs to {}",
            event.stream_id()
        ));
    }
    let command = command_for(&event).map_err(|e| format!("position {position}: {e}"))?;
    Ok(Decoded { event, command })
}

/// The command that, decided from the state before it, should yield exactly `event`.
fn command_for(event: &Event) -> Result<Command, String> {
    Ok(match event {
        Event::AssetRegistered(e) => Command::RegisterAsset(RegisterAsset {
            code: e.code.clone(),
            scale: e.scale,
        }),
        Event::AccountOpened(e) => Command::OpenAccount(e.clone()),
        Event::AccountFrozen(e) => lifecycle(e, AccountLifecycle::Freeze),
        Event::AccountUnfrozen(e) => lifecycle(e, AccountLifecycle::Unfreeze),
        Event::AccountClosed(e) => lifecycle(e, AccountLifecycle::Close),
        // Decided at the event's recorded time, its effective time must be at most a day ahead.
        Event::TransferPosted(e) => Command::PostTransfer(
            PostTransfer::new(e.id.clone(), e.postings.clone(), e.metadata.clone(), e.reverses.clone())
                .and_then(|t| match e.effective_at_micros {
                    Some(at) => t.effective_at(Timestamp(at)),
                    None => Ok(t),
                })
                .map_err(|error| format!("transfer {} is malformed: {error}", e.id))?,
        ),
        // Decided at the event's recorded time, the hold must expire exactly when it says.
        Event::TransferPending(e) => Command::PostTransfer(
            PostTransfer::new(e.id.clone(), e.postings.clone(), e.metadata.clone(), None)
                .and_then(|t| t.pending(e.timeout_secs))
                .map_err(|error| format!("hold {} is malformed: {error}", e.id))?,
        ),
        // Posting the amounts it records must post exactly them.
        Event::PendingPosted(e) => resolution(
            &e.id,
            HoldAction::post(Some(e.postings.clone()))
                .map_err(|error| format!("post of {} is malformed: {error}", e.id))?,
        ),
        Event::PendingVoided(e) => resolution(&e.id, HoldAction::Void),
        // Decided at the event's recorded time: refused if the hold had not expired by then.
        Event::PendingExpired(e) => resolution(&e.id, HoldAction::Expire),
        Event::AccountMetadataSet(e) => annotation(Subject::Account(e.id.clone()), &e.metadata)?,
        Event::TransferMetadataSet(e) => annotation(Subject::Transfer(e.id.clone()), &e.metadata)?,
        Event::PersonalDataErased(e) => Command::ErasePersonalData(e.subject.clone()),
    })
}

/// A metadata change must name its subject (which must exist) and at least one key.
fn annotation(subject: Subject, patch: &Metadata) -> Result<Command, String> {
    let described = match &subject {
        Subject::Account(id) => format!("account {id}"),
        Subject::Transfer(id) => format!("transfer {id}"),
    };
    SetMetadata::new(subject, patch.clone())
        .map(Command::SetMetadata)
        .map_err(|error| format!("metadata change of {described} is malformed: {error}"))
}

fn resolution(id: &ledger::TransferId, action: HoldAction) -> Command {
    Command::ResolveHold(ResolveHold { id: id.clone(), action })
}

fn lifecycle(event: &ledger::AccountLifecycleEvent, change: AccountLifecycle) -> Command {
    Command::ChangeAccount {
        account: event.id.clone(),
        change,
    }
}

/// How the read tables spell a status.
pub fn status_name(status: AccountStatus) -> &'static str {
    status.as_str()
}
