//! What a batch of events changes in the read tables, computed in memory from the events and the
//! current rows of the accounts they touch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger::{AccountFlags, AccountStatus, Event, Metadata, NormalSide, PendingPosted, PendingReleased, Posting};
use partida_eventstore::micros_to_datetime;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::{ApplyError, Decoded};

/// The read tables of one generation, in the order they are created.
pub(crate) const TABLES: [&str; 5] = ["assets", "accounts", "entries", "transfers", "totals"];

pub(crate) struct AssetRow {
    pub code: String,
    pub scale: i16,
    pub position: i64,
    pub registered_at: OffsetDateTime,
}

/// Present only for accounts opened in this batch: what their first row needs.
pub(crate) struct Opening {
    pub name: String,
    pub flags: AccountFlags,
    pub metadata: Metadata,
    pub opened_position: i64,
    pub opened_at: OffsetDateTime,
}

pub(crate) struct AccountRow {
    pub asset: String,
    pub normal_side: NormalSide,
    pub status: AccountStatus,
    pub debits: i64,
    pub credits: i64,
    pub pending_debits: i64,
    pub pending_credits: i64,
    /// Events that changed the account (see `ledger::Account::revision`).
    pub revision: i64,
    pub last_position: i64,
    pub updated_at: OffsetDateTime,
    pub opening: Option<Opening>,
    /// For an account opened before the batch: the batch's metadata patches, composed.
    pub metadata_patch: Option<Metadata>,
}

impl AccountRow {
    /// The row as a later batch finds it: already in the table.
    fn settled(&self) -> Self {
        Self {
            asset: self.asset.clone(),
            normal_side: self.normal_side,
            status: self.status,
            debits: self.debits,
            credits: self.credits,
            pending_debits: self.pending_debits,
            pending_credits: self.pending_credits,
            revision: self.revision,
            last_position: self.last_position,
            updated_at: self.updated_at,
            opening: None,
            metadata_patch: None,
        }
    }

    pub fn balance(&self) -> i64 {
        ledger::signed_balance(self.normal_side, self.debits, self.credits)
    }

    /// Marks the account changed by the event at `position`: its revision counts each event once.
    fn touch(&mut self, position: i64, at: OffsetDateTime) {
        if self.last_position != position {
            self.revision += 1;
        }
        self.last_position = position;
        self.updated_at = at;
    }

    /// Applies a metadata patch: to the opening row, or composed with the batch's others for
    /// the table's row. The revision does not count it (see `ledger::Account::revision`).
    fn annotate(&mut self, patch: &Metadata, position: i64, at: OffsetDateTime) {
        match &mut self.opening {
            Some(opening) => ledger::apply_patch(&mut opening.metadata, patch),
            None => compose(&mut self.metadata_patch, patch),
        }
        self.last_position = position;
        self.updated_at = at;
    }
}

/// `later` applied after `patches`: still a patch, whose `null`s remove.
fn compose(patches: &mut Option<Metadata>, later: &Metadata) {
    patches
        .get_or_insert_with(Metadata::new)
        .extend(later.iter().map(|(k, v)| (k.clone(), v.clone())));
}

pub(crate) struct EntryRow {
    pub account_id: String,
    pub position: i64,
    pub seq: i32,
    pub transfer_id: String,
    pub side: &'static str,
    pub amount: i64,
    pub debits: i64,
    pub credits: i64,
    pub balance: i64,
    pub recorded_at: OffsetDateTime,
    /// When the leg takes effect, if not when recorded.
    pub effective_at: Option<OffsetDateTime>,
}

pub(crate) struct TransferRow {
    pub id: String,
    pub position: i64,
    /// What moved, as JSON text: for a hold, nothing until it is posted.
    pub postings: String,
    pub metadata: Metadata,
    pub reverses: Option<String>,
    /// Set here when the reversal is in the same batch (an UPDATE could not see the row yet).
    pub reversed_by: Option<String>,
    pub recorded_at: OffsetDateTime,
    /// When it takes effect, if not when recorded.
    pub effective_at: Option<OffsetDateTime>,
    /// `posted`, or for a hold `pending`, `posted`, `voided` or `expired`.
    pub status: &'static str,
    /// What a hold reserved.
    pub held: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// Set here when the hold is resolved in the same batch.
    pub resolution: Option<ResolutionRow>,
}

/// Which transfer a posted leg belongs to, its entries' first sequence number, and when it takes
/// effect if not when recorded (a hold's post takes effect when it is recorded).
struct Leg<'a> {
    transfer: &'a str,
    seq: i32,
    effective_at: Option<OffsetDateTime>,
}

/// How a hold ended: its status, what moved, and when.
pub(crate) struct ResolutionRow {
    pub status: &'static str,
    /// As JSON text.
    pub postings: String,
    pub position: i64,
    pub at: OffsetDateTime,
}

#[derive(Default)]
pub(crate) struct TotalsDelta {
    pub posted: i64,
    pub accounts: i64,
    pub transfers: i64,
}

#[derive(Default)]
pub(crate) struct Changes {
    pub assets: Vec<AssetRow>,
    pub accounts: BTreeMap<String, AccountRow>,
    pub entries: Vec<EntryRow>,
    pub transfers: Vec<TransferRow>,
    /// Where each of `transfers` is.
    batch_transfers: HashMap<String, usize>,
    /// What the batch changes on transfers applied by an earlier one, by id: one row each, as
    /// one statement cannot update a row twice.
    pub earlier: BTreeMap<String, TransferUpdate>,
    pub totals: BTreeMap<String, TotalsDelta>,
    /// The legs of the open holds the batch resolves or opens.
    holds: HashMap<String, Vec<Posting>>,
    /// The data subjects the batch erases: their personal data leaves every row after the
    /// batch's rows are written.
    pub erased: Vec<String>,
}

/// What a batch changes on a transfer applied by an earlier batch.
#[derive(Default)]
pub(crate) struct TransferUpdate {
    /// A hold's resolution.
    pub resolution: Option<ResolutionRow>,
    pub reversed_by: Option<String>,
    /// The batch's metadata patches, composed.
    pub metadata_patch: Option<Metadata>,
}

/// Legs as the tables' `jsonb` takes them.
fn postings_text(postings: &[Posting]) -> String {
    // A list of legs (ids and amounts) always encodes.
    serde_json::to_string(postings).unwrap_or_default()
}

/// The holds a batch resolves without opening them: their legs must come from before it.
fn resolved_not_opened(decoded: &Decoded) -> Vec<&str> {
    let mut opened = BTreeSet::new();
    let mut wanted = BTreeSet::new();
    for (_, _, event) in decoded {
        match event {
            Event::TransferPending(e) => {
                opened.insert(e.id.as_str());
            }
            Event::PendingPosted(PendingPosted { id, .. })
            | Event::PendingVoided(PendingReleased { id })
            | Event::PendingExpired(PendingReleased { id }) => {
                wanted.insert(id.as_str());
            }
            _ => {}
        }
    }
    wanted.difference(&opened).copied().collect()
}

/// The accounts a batch changes without opening them: their rows must come from before it.
/// `holds` has the legs of the holds it resolves.
fn touched_not_opened<'a>(decoded: &'a Decoded, holds: &'a HashMap<String, Vec<Posting>>) -> Vec<&'a str> {
    let mut opened = BTreeSet::new();
    let mut wanted = BTreeSet::new();
    for (_, _, event) in decoded {
        match event {
            Event::TransferPending(e) => {
                for p in &e.postings {
                    wanted.insert(p.debit.as_str());
                    wanted.insert(p.credit.as_str());
                }
            }
            Event::PendingPosted(PendingPosted { id, .. })
            | Event::PendingVoided(PendingReleased { id })
            | Event::PendingExpired(PendingReleased { id }) => {
                for p in holds.get(id.as_str()).into_iter().flatten() {
                    wanted.insert(p.debit.as_str());
                    wanted.insert(p.credit.as_str());
                }
            }
            Event::AccountOpened(e) => {
                opened.insert(e.id.as_str());
            }
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => {
                wanted.insert(e.id.as_str());
            }
            Event::AccountMetadataSet(e) => {
                wanted.insert(e.id.as_str());
            }
            Event::TransferPosted(e) => {
                for p in &e.postings {
                    wanted.insert(p.debit.as_str());
                    wanted.insert(p.credit.as_str());
                }
            }
            Event::AssetRegistered(_) | Event::TransferMetadataSet(_) | Event::PersonalDataErased(_) => {}
        }
    }
    wanted.difference(&opened).copied().collect()
}

/// The legs of the holds `ids` (resolved by a batch, opened before it).
async fn load_holds(
    conn: &mut PgConnection,
    schema: &str,
    ids: &[&str],
) -> Result<HashMap<String, Vec<Posting>>, ApplyError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT id, held FROM {schema}.transfers WHERE id = ANY($1) AND held IS NOT NULL");
    let rows = sqlx::query_as::<_, (String, sqlx::types::Json<Vec<Posting>>)>(&sql)
        .persistent(false)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(id, held)| (id, held.0)).collect())
}

/// Account rows and open holds as they stand after the batches applied so far: lets a replay
/// compute the next batch while the previous one is still being written.
#[derive(Default)]
pub(crate) struct Cache {
    accounts: HashMap<String, AccountRow>,
    holds: HashMap<String, Vec<Posting>>,
}

/// The account rows as the live projector's own writes left them, so that a batch reads from its
/// tables only the accounts it has not written before. It is true only while every write is this
/// projector's: emptied on any failure, and a lost race starts a new projection with a new one.
/// Emptied, too, whenever it would grow past `LIVE_ACCOUNTS_BOUND` rows.
#[derive(Default)]
pub(crate) struct LiveAccounts(HashMap<String, AccountRow>);

/// About 20 MB of account rows.
const LIVE_ACCOUNTS_BOUND: usize = 100_000;

impl LiveAccounts {
    /// `changes` are written: their account rows are what the next batch finds.
    pub fn written(&mut self, changes: &Changes) {
        if self.0.len() + changes.accounts.len() > LIVE_ACCOUNTS_BOUND {
            self.0.clear();
        }
        for (id, row) in &changes.accounts {
            self.0.insert(id.clone(), row.settled());
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl Changes {
    /// The changes of `decoded`, starting from the account rows in `live` and, for the others
    /// (all of them when `live` is empty), in the tables of `schema`; holds are always read from
    /// the tables.
    pub async fn compute(
        conn: &mut PgConnection,
        schema: &str,
        decoded: &Decoded,
        live: &LiveAccounts,
    ) -> Result<Self, ApplyError> {
        let holds = load_holds(conn, schema, &resolved_not_opened(decoded)).await?;
        let mut changes = Self::default();
        let mut unknown = Vec::new();
        for id in touched_not_opened(decoded, &holds) {
            match live.0.get(id) {
                Some(row) => {
                    changes.accounts.insert(id.to_owned(), row.settled());
                }
                None => unknown.push(id),
            }
        }
        changes.load_accounts(conn, schema, &unknown).await?;
        changes.holds = holds;
        changes.apply_all(decoded);
        Ok(changes)
    }

    /// The changes of `decoded`, starting from the account rows and holds in `cache`; the cache
    /// is then moved past them.
    pub fn compute_cached(cache: &mut Cache, decoded: &Decoded) -> Self {
        let mut changes = Self::default();
        for id in resolved_not_opened(decoded) {
            if let Some(legs) = cache.holds.remove(id) {
                changes.holds.insert(id.to_owned(), legs);
            }
        }
        for id in touched_not_opened(decoded, &changes.holds) {
            if let Some(row) = cache.accounts.get(id) {
                changes.accounts.insert(id.to_owned(), row.settled());
            }
        }
        changes.apply_all(decoded);
        for (id, row) in &changes.accounts {
            cache.accounts.insert(id.clone(), row.settled());
        }
        // What is left are the holds still open after the batch.
        cache.holds.extend(changes.holds.drain());
        changes
    }

    fn apply_all(&mut self, decoded: &Decoded) {
        for (position, at, event) in decoded {
            self.apply(*position, *at, event);
        }
    }

    /// Loads the current rows of `ids` (accounts the batch changes but did not open).
    async fn load_accounts(&mut self, conn: &mut PgConnection, schema: &str, ids: &[&str]) -> Result<(), ApplyError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT id, asset, normal_side, status, debits, credits, pending_debits, pending_credits, \
                    revision, last_position, updated_at \
               FROM {schema}.accounts WHERE id = ANY($1)"
        );
        // Planned with the actual ids every time: a generic plan may scan the table.
        for row in sqlx::query(&sql)
            .persistent(false)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?
        {
            let normal_side = if row.try_get::<&str, _>("normal_side")? == "credit" {
                NormalSide::Credit
            } else {
                NormalSide::Debit
            };
            let account = AccountRow {
                asset: row.try_get("asset")?,
                normal_side,
                status: AccountStatus::parse(row.try_get("status")?).unwrap_or(AccountStatus::Open),
                debits: row.try_get("debits")?,
                credits: row.try_get("credits")?,
                pending_debits: row.try_get("pending_debits")?,
                pending_credits: row.try_get("pending_credits")?,
                revision: row.try_get("revision")?,
                last_position: row.try_get("last_position")?,
                updated_at: row.try_get("updated_at")?,
                opening: None,
                metadata_patch: None,
            };
            self.accounts.insert(row.try_get("id")?, account);
        }
        Ok(())
    }

    fn apply(&mut self, position: i64, at: OffsetDateTime, event: &Event) {
        match event {
            Event::AssetRegistered(e) => {
                self.assets.push(AssetRow {
                    code: e.code.to_string(),
                    scale: i16::from(e.scale.get()),
                    position,
                    registered_at: at,
                });
                self.totals.entry(e.code.to_string()).or_default();
            }
            Event::AccountOpened(e) => {
                self.totals.entry(e.asset.to_string()).or_default().accounts += 1;
                let row = AccountRow {
                    asset: e.asset.to_string(),
                    normal_side: e.normal_side,
                    status: AccountStatus::Open,
                    debits: 0,
                    credits: 0,
                    pending_debits: 0,
                    pending_credits: 0,
                    revision: 1,
                    last_position: position,
                    updated_at: at,
                    metadata_patch: None,
                    opening: Some(Opening {
                        name: e.name.clone(),
                        flags: e.flags,
                        metadata: e.metadata.clone(),
                        opened_position: position,
                        opened_at: at,
                    }),
                };
                self.accounts.insert(e.id.to_string(), row);
            }
            Event::AccountFrozen(e) => self.set_status(e.id.as_str(), AccountStatus::Frozen, position, at),
            Event::AccountUnfrozen(e) => self.set_status(e.id.as_str(), AccountStatus::Open, position, at),
            Event::AccountClosed(e) => self.set_status(e.id.as_str(), AccountStatus::Closed, position, at),
            Event::TransferPosted(e) => {
                let effective_at = e.effective_at_micros.map(micros_to_datetime);
                let mut assets = HashMap::new();
                for (index, posting) in e.postings.iter().enumerate() {
                    let seq = i32::try_from(index * 2).unwrap_or(i32::MAX);
                    let leg = Leg {
                        transfer: e.id.as_str(),
                        seq,
                        effective_at,
                    };
                    if let Some(asset) = self.post(posting, &leg, position, at) {
                        *assets.entry(asset).or_insert(0) += posting.amount.get();
                    }
                }
                for (asset, amount) in assets {
                    let totals = self.totals.entry(asset).or_default();
                    totals.posted += amount;
                    totals.transfers += 1;
                }
                if let Some(original) = &e.reverses {
                    let by = Some(e.id.to_string());
                    match self.in_batch(original.as_str()) {
                        Some(row) => row.reversed_by = by,
                        None => self.earlier.entry(original.to_string()).or_default().reversed_by = by,
                    }
                }
                self.push_transfer(TransferRow {
                    id: e.id.to_string(),
                    position,
                    postings: postings_text(&e.postings),
                    metadata: e.metadata.clone(),
                    reverses: e.reverses.as_ref().map(ToString::to_string),
                    reversed_by: None,
                    recorded_at: at,
                    effective_at,
                    status: "posted",
                    held: None,
                    expires_at: None,
                    resolution: None,
                });
            }
            Event::TransferPending(e) => {
                let mut assets = BTreeSet::new();
                for posting in &e.postings {
                    if let Some(asset) = self.reserve(posting, 1, position, at) {
                        assets.insert(asset);
                    }
                }
                for asset in assets {
                    self.totals.entry(asset).or_default().transfers += 1;
                }
                self.holds.insert(e.id.to_string(), e.postings.clone());
                self.push_transfer(TransferRow {
                    id: e.id.to_string(),
                    position,
                    postings: postings_text(&[]),
                    metadata: e.metadata.clone(),
                    reverses: None,
                    reversed_by: None,
                    recorded_at: at,
                    effective_at: None,
                    status: "pending",
                    held: Some(postings_text(&e.postings)),
                    expires_at: e.expires_at_micros.map(micros_to_datetime),
                    resolution: None,
                });
            }
            Event::PendingPosted(e) => self.resolve(e.id.as_str(), ("posted", &e.postings), position, at),
            Event::PendingVoided(e) => self.resolve(e.id.as_str(), ("voided", &[]), position, at),
            Event::PendingExpired(e) => self.resolve(e.id.as_str(), ("expired", &[]), position, at),
            Event::AccountMetadataSet(e) => {
                if let Some(account) = self.accounts.get_mut(e.id.as_str()) {
                    account.annotate(&e.metadata, position, at);
                }
            }
            Event::TransferMetadataSet(e) => match self.in_batch(e.id.as_str()) {
                Some(row) => ledger::apply_patch(&mut row.metadata, &e.metadata),
                None => compose(
                    &mut self.earlier.entry(e.id.to_string()).or_default().metadata_patch,
                    &e.metadata,
                ),
            },
            Event::PersonalDataErased(e) => self.erased.push(e.subject.to_string()),
        }
    }

    fn push_transfer(&mut self, row: TransferRow) {
        self.batch_transfers.insert(row.id.clone(), self.transfers.len());
        self.transfers.push(row);
    }

    /// The row of a transfer applied by this batch.
    fn in_batch(&mut self, id: &str) -> Option<&mut TransferRow> {
        let index = *self.batch_transfers.get(id)?;
        self.transfers.get_mut(index)
    }

    /// Releases a hold's reservation and records how it ended (`status`); a post then moves
    /// its amounts (`moved`), with entries under the hold's id at the resolution's position.
    fn resolve(&mut self, id: &str, (status, moved): (&'static str, &[Posting]), position: i64, at: OffsetDateTime) {
        for posting in self.holds.remove(id).unwrap_or_default() {
            self.reserve(&posting, -1, position, at);
        }
        let mut assets = HashMap::new();
        for (index, posting) in moved.iter().enumerate() {
            let leg = Leg {
                transfer: id,
                seq: i32::try_from(index * 2).unwrap_or(i32::MAX),
                effective_at: None,
            };
            if let Some(asset) = self.post(posting, &leg, position, at) {
                *assets.entry(asset).or_insert(0) += posting.amount.get();
            }
        }
        for (asset, amount) in assets {
            self.totals.entry(asset).or_default().posted += amount;
        }
        let resolution = Some(ResolutionRow {
            status,
            postings: postings_text(moved),
            position,
            at,
        });
        match self.in_batch(id) {
            Some(row) => row.resolution = resolution,
            None => self.earlier.entry(id.to_owned()).or_default().resolution = resolution,
        }
    }

    /// Reserves (`sign` 1) or releases (`sign` -1) one held leg. Returns the asset.
    fn reserve(&mut self, posting: &Posting, sign: i64, position: i64, at: OffsetDateTime) -> Option<String> {
        let amount = sign * posting.amount.get();
        let mut asset = None;
        if let Some(account) = self.accounts.get_mut(posting.debit.as_str()) {
            account.pending_debits = account.pending_debits.saturating_add(amount);
            account.touch(position, at);
            asset = Some(account.asset.clone());
        }
        if let Some(account) = self.accounts.get_mut(posting.credit.as_str()) {
            account.pending_credits = account.pending_credits.saturating_add(amount);
            account.touch(position, at);
        }
        asset
    }

    fn set_status(&mut self, id: &str, status: AccountStatus, position: i64, at: OffsetDateTime) {
        if let Some(account) = self.accounts.get_mut(id) {
            account.status = status;
            account.touch(position, at);
        }
    }

    /// Posts one leg: an entry on each side with the account's totals after it. Returns the asset.
    fn post(&mut self, posting: &Posting, leg: &Leg<'_>, position: i64, at: OffsetDateTime) -> Option<String> {
        let amount = posting.amount.get();
        let mut asset = None;
        for (account_id, side, seq) in [
            (&posting.debit, "debit", leg.seq),
            (&posting.credit, "credit", leg.seq + 1),
        ] {
            let Some(account) = self.accounts.get_mut(account_id.as_str()) else {
                continue;
            };
            if side == "debit" {
                account.debits = account.debits.saturating_add(amount);
            } else {
                account.credits = account.credits.saturating_add(amount);
            }
            account.touch(position, at);
            asset = Some(account.asset.clone());
            self.entries.push(EntryRow {
                account_id: account_id.to_string(),
                position,
                seq,
                transfer_id: leg.transfer.to_owned(),
                side,
                amount,
                debits: account.debits,
                credits: account.credits,
                balance: account.balance(),
                recorded_at: at,
                effective_at: leg.effective_at,
            });
        }
        asset
    }
}
