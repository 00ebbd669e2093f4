//! Point-in-time books: the trial balance as of a position or a time, replayed from the log
//! (every event verified on the way), and compared with query-api's for the same point. With an
//! effective time, the books hold only the legs taking effect by then, among those the log held
//! at the point (what was known then about that time).

use std::collections::{BTreeMap, HashMap};

use ledger::Event;

use ledger::log::ChainCheck;
use serde::{Deserialize, Serialize};

use crate::api::QueryApi;
use crate::replay::{Placed, Replay, decode_row};
use crate::report::Failure;
use crate::source::{Source, SourceError};

/// Where in the log the books are drawn up.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Position(i64),
    /// Microseconds since the epoch: the last event recorded at or before it.
    Time(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    pub normal_side: String,
    pub debits: i64,
    pub credits: i64,
    pub balance: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetBooks {
    pub asset: String,
    pub scale: i16,
    pub debits: i64,
    pub credits: i64,
    pub balanced: bool,
    pub accounts: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Books {
    pub at_position: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_effective: Option<String>,
    pub assets: Vec<AssetBooks>,
}

/// Each account's debits and credits over the legs that take effect by a time: a transfer's at
/// its effective time (its recorded time unless it gave one), a hold's post at its recorded time.
struct EffectiveTotals {
    at: i64,
    totals: HashMap<String, (i64, i64)>,
}

impl EffectiveTotals {
    fn add(&mut self, recorded_at: i64, event: &Event) {
        let (legs, effective_at) = match event {
            Event::TransferPosted(e) => (&e.postings, e.effective_at(recorded_at)),
            Event::PendingPosted(e) => (&e.postings, recorded_at),
            _ => return,
        };
        if effective_at > self.at {
            return;
        }
        for leg in legs {
            let amount = leg.amount.get();
            let debit = self.totals.entry(leg.debit.to_string()).or_default();
            debit.0 = debit.0.saturating_add(amount);
            let credit = self.totals.entry(leg.credit.to_string()).or_default();
            credit.1 = credit.1.saturating_add(amount);
        }
    }
}

/// Replays `source` up to `at` (chain checked, every event re-decided) and draws up the books,
/// by effective time when `effective` (microseconds) is given.
pub async fn replay_to(
    mut source: Source,
    at: At,
    effective: Option<i64>,
) -> Result<Result<Books, Failure>, SourceError> {
    let mut chain = ChainCheck::from_genesis();
    let mut replay = Replay::default();
    let mut by_effective = effective.map(|at| EffectiveTotals {
        at,
        totals: HashMap::new(),
    });
    while let Some(record) = source.next().await? {
        let past = match at {
            At::Position(position) => record.position > position,
            At::Time(micros) => record.recorded_at_micros > micros,
        };
        if past {
            break;
        }
        if let Err(error) = chain.check(&record.fields(), &record.hash) {
            return Ok(Err(Failure::new("chain", Some(record.position), error.to_string())));
        }
        let decoded = decode_row(&record);
        if let (Some(by_effective), Ok(decoded)) = (&mut by_effective, &decoded) {
            by_effective.add(record.recorded_at_micros, &decoded.event);
        }
        if let Err(message) = replay.apply_decoded(Placed::of(&record), decoded) {
            return Ok(Err(Failure::new("replay", Some(record.position), message)));
        }
    }
    if let At::Position(position) = at
        && chain.position() < position
    {
        return Ok(Err(Failure::new(
            "books",
            None,
            format!("the log ends at position {}, before {position}", chain.position()),
        )));
    }
    Ok(Ok(books(&replay, chain.position(), by_effective.as_ref())))
}

fn books(replay: &Replay, at_position: i64, by_effective: Option<&EffectiveTotals>) -> Books {
    let state = replay.state();
    let mut assets: BTreeMap<String, AssetBooks> = state
        .assets
        .iter()
        .map(|(code, asset)| {
            (
                code.to_string(),
                AssetBooks {
                    asset: code.to_string(),
                    scale: i16::from(asset.scale.get()),
                    debits: 0,
                    credits: 0,
                    balanced: true,
                    accounts: Vec::new(),
                },
            )
        })
        .collect();
    for (id, account) in &state.accounts {
        let Some(books) = assets.get_mut(account.asset.as_str()) else {
            continue;
        };
        let (debits, credits) = match by_effective {
            Some(effective) => effective.totals.get(id.as_str()).copied().unwrap_or_default(),
            None => (account.debits, account.credits),
        };
        books.debits = books.debits.saturating_add(debits);
        books.credits = books.credits.saturating_add(credits);
        books.accounts.push(Line {
            id: id.to_string(),
            normal_side: account.normal_side.as_str().into(),
            debits,
            credits,
            balance: ledger::signed_balance(account.normal_side, debits, credits),
        });
    }
    for books in assets.values_mut() {
        books.accounts.sort_by(|a, b| a.id.cmp(&b.id));
        books.balanced = books.debits == books.credits;
    }
    Books {
        at_position,
        as_of_effective: by_effective
            .map(|e| partida_eventstore::format_timestamp(partida_eventstore::micros_to_datetime(e.at))),
        assets: assets.into_values().collect(),
    }
}

/// query-api's trial balance at the same position (and effective time).
pub async fn served(api: &QueryApi, books: &Books) -> anyhow::Result<Books> {
    let mut query = vec![("at_position", books.at_position.to_string())];
    if let Some(at) = &books.as_of_effective {
        query.push(("as_of_effective", at.clone()));
    }
    Ok(api
        .http()
        .get(api.url("/v1/trial-balance"))
        .query(&query)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Every line where the two books differ, in words.
pub fn differences(replayed: &Books, served: &Books) -> Vec<String> {
    let mut found = Vec::new();
    let lines = |books: &Books| -> BTreeMap<(String, String), Line> {
        books
            .assets
            .iter()
            .flat_map(|a| a.accounts.iter().map(|l| ((a.asset.clone(), l.id.clone()), l.clone())))
            .collect()
    };
    let (mine, theirs) = (lines(replayed), lines(served));
    for (key, line) in &mine {
        match theirs.get(key) {
            None => found.push(format!(
                "account {} ({}) is missing from query-api's books",
                key.1, key.0
            )),
            Some(other) if other != line => found.push(format!(
                "account {}: debits/credits/balance {}/{}/{} in the replay, {}/{}/{} in query-api's books",
                key.1, line.debits, line.credits, line.balance, other.debits, other.credits, other.balance
            )),
            Some(_) => {}
        }
    }
    for key in theirs.keys().filter(|key| !mine.contains_key(*key)) {
        found.push(format!(
            "account {} ({}) is in query-api's books but not in the replay",
            key.1, key.0
        ));
    }
    found
}

/// The books for people: one block per asset, amounts in minor units.
pub fn human(books: &Books) -> String {
    use std::fmt::Write;
    let mut out = match &books.as_of_effective {
        Some(at) => format!(
            "Trial balance of the legs effective by {at}, as known after position {}\n",
            books.at_position
        ),
        None => format!("Trial balance after position {}\n", books.at_position),
    };
    for asset in &books.assets {
        let verdict = if asset.balanced { "balanced" } else { "NOT BALANCED" };
        let _ = writeln!(
            out,
            "\n{} (scale {}): debits {}, credits {}: {verdict}",
            asset.asset, asset.scale, asset.debits, asset.credits
        );
        for line in &asset.accounts {
            let _ = writeln!(
                out,
                "  {:<40} {:>6} {:>20} {:>20} {:>20}",
                line.id, line.normal_side, line.debits, line.credits, line.balance
            );
        }
    }
    out
}
