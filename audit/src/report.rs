//! What a verification found, for people (a summary) and programs (`--json`).

use std::fmt::Write;

use serde::Serialize;

use crate::compare::{Comparison, Difference};
use crate::replay::{AssetTotals, PersonalData};

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Which check: `chain`, `replay`, `double entry`, `read tables`, `write side`.
    pub check: String,
    pub position: Option<i64>,
    pub message: String,
}

impl Failure {
    pub fn new(check: &str, position: Option<i64>, message: impl Into<String>) -> Self {
        Self {
            check: check.to_owned(),
            position,
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Compared {
    pub what: String,
    pub accounts: usize,
    pub differences: Vec<Difference>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub source: String,
    /// The last position verified (the log from 1 to it is verified when `ok`).
    pub events: i64,
    pub head_hash: String,
    /// The Merkle root of the verified log (RFC 6962 over the records' hashes).
    pub merkle_root: String,
    pub last_recorded_at: Option<String>,
    /// Signed checkpoints whose signature, chain hash and Merkle root were verified.
    pub checkpoints_verified: usize,
    /// Checkpoints after the end of a partial export (not checked).
    pub checkpoints_beyond: usize,
    /// Where the keys that checked the signatures came from.
    pub keys_from: Option<String>,
    pub assets: Vec<AssetTotals>,
    pub personal_data: PersonalData,
    pub compared: Vec<Compared>,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn new(source: String) -> Self {
        Self {
            ok: true,
            source,
            events: 0,
            head_hash: String::new(),
            merkle_root: String::new(),
            last_recorded_at: None,
            checkpoints_verified: 0,
            checkpoints_beyond: 0,
            keys_from: None,
            assets: Vec::new(),
            personal_data: PersonalData::default(),
            compared: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn fail(&mut self, failure: Failure) {
        self.failures.push(failure);
        self.ok = false;
    }

    pub fn compared(&mut self, what: &str, comparison: Comparison) {
        for difference in &comparison.differences {
            self.fail(Failure::new(
                what,
                None,
                format!(
                    "account {}: {} is {} in the replay but {} in the {what}",
                    difference.account, difference.field, difference.replayed, difference.stored
                ),
            ));
        }
        self.compared.push(Compared {
            what: what.to_owned(),
            accounts: comparison.accounts,
            differences: comparison.differences,
        });
    }

    /// The summary a person reads.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let verdict = if self.ok { "OK" } else { "FAILED" };
        let _ = writeln!(out, "partida-audit verify: {verdict}");
        let _ = writeln!(out, "  source       {}", self.source);
        let _ = writeln!(out, "  verified     positions 1 to {}", self.events);
        let _ = writeln!(out, "  head hash    {}", self.head_hash);
        let _ = writeln!(out, "  merkle root  {}", self.merkle_root);
        if let Some(at) = &self.last_recorded_at {
            let _ = writeln!(out, "  last event   recorded {at}");
        }
        if self.ok {
            let _ = writeln!(
                out,
                "  chain        ok: positions dense from 1, every hash and link recomputed, time never backwards"
            );
            let _ = writeln!(
                out,
                "  replay       ok: every event re-decided by the domain (no limit broken, each reversal matched once)"
            );
            let _ = writeln!(out, "  double entry ok: per asset, debits = credits = posted");
        }
        if let Some(keys_from) = &self.keys_from {
            let _ = writeln!(
                out,
                "  checkpoints  {} verified (signature, chain hash, Merkle root); {} beyond the export; keys from {keys_from}",
                self.checkpoints_verified, self.checkpoints_beyond
            );
        }
        for asset in &self.assets {
            let _ = writeln!(
                out,
                "  asset        {} (scale {}): {} accounts, {} posted in minor units",
                asset.asset, asset.scale, asset.accounts, asset.posted
            );
        }
        let personal = &self.personal_data;
        if personal.sealed_values > 0 || personal.erased_subjects > 0 {
            let _ = writeln!(
                out,
                "  personal     {} sealed values of {} subjects; {} subjects erased, {} of those values unreadable for good",
                personal.sealed_values, personal.subjects, personal.erased_subjects, personal.erased_values
            );
        }
        for compared in &self.compared {
            let state = if compared.differences.is_empty() {
                "ok".to_owned()
            } else {
                format!("{} differences", compared.differences.len())
            };
            let _ = writeln!(
                out,
                "  compared     {}: {} accounts, {state}",
                compared.what, compared.accounts
            );
        }
        for failure in &self.failures {
            let _ = writeln!(out, "  FAILED {}: {}", failure.check, failure.message);
        }
        out
    }
}
