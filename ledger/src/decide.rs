//! `decide`: the ledger's rules. Given the state and a command, either the events that record it or
//! the reason it is refused. An identical replay of an earlier command decides no events.

use crate::command::{AccountLifecycle, Command, OpenAccount, PostTransfer, Posting, RegisterAsset};
use crate::event::{AccountLifecycleEvent, AssetRegistered, Event};
use crate::ids::{AccountId, AssetCode, Timestamp, TransferId};
use crate::rejection::{LimitFlag, Rejection};
use crate::state::{Account, AccountStatus, State};

/// Decides `command` against `state`.
///
/// `Ok(vec![])` means the command is an identical replay of one already recorded: the caller answers
/// with the original result. `now` is the batch's recorded time (no rule reads it yet; pending
/// transfers' expiry will).
pub fn decide(state: &State, command: &Command, _now: Timestamp) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::RegisterAsset(c) => register_asset(state, c),
        Command::OpenAccount(c) => open_account(state, c),
        Command::ChangeAccount { account, change } => change_account(state, account, *change),
        Command::PostTransfer(c) => post_transfer(state, c),
    }
}

fn register_asset(state: &State, c: &RegisterAsset) -> Result<Vec<Event>, Rejection> {
    match state.assets.get(&c.code) {
        Some(asset) if asset.scale == c.scale => Ok(vec![]),
        Some(_) => Err(Rejection::IdempotencyConflict {
            kind: "asset",
            id: c.code.to_string(),
        }),
        None => Ok(vec![Event::AssetRegistered(AssetRegistered {
            code: c.code.clone(),
            scale: c.scale,
        })]),
    }
}

fn open_account(state: &State, c: &OpenAccount) -> Result<Vec<Event>, Rejection> {
    if let Some(existing) = state.accounts.get(&c.id) {
        return if existing.fingerprint == c.fingerprint() {
            Ok(vec![])
        } else {
            Err(Rejection::IdempotencyConflict {
                kind: "account",
                id: c.id.to_string(),
            })
        };
    }
    if !state.assets.contains_key(&c.asset) {
        return Err(Rejection::AssetNotFound { asset: c.asset.clone() });
    }
    Ok(vec![Event::AccountOpened(c.clone())])
}

fn change_account(state: &State, id: &AccountId, change: AccountLifecycle) -> Result<Vec<Event>, Rejection> {
    let account = find_account(state, id)?;
    let event = AccountLifecycleEvent { id: id.clone() };
    let closed = || Rejection::AccountClosed { account: id.clone() };
    match (change, account.status) {
        (_, AccountStatus::Closed) => Err(closed()),
        (AccountLifecycle::Freeze, AccountStatus::Frozen) => Err(Rejection::AccountFrozen { account: id.clone() }),
        (AccountLifecycle::Freeze, AccountStatus::Open) => Ok(vec![Event::AccountFrozen(event)]),
        (AccountLifecycle::Unfreeze, AccountStatus::Open) => Err(Rejection::AccountNotFrozen { account: id.clone() }),
        (AccountLifecycle::Unfreeze, AccountStatus::Frozen) => Ok(vec![Event::AccountUnfrozen(event)]),
        (AccountLifecycle::Close, _) if account.debits != account.credits => Err(Rejection::AccountNotEmpty {
            account: id.clone(),
            balance: account.balance(),
        }),
        (AccountLifecycle::Close, _) => Ok(vec![Event::AccountClosed(event)]),
    }
}

fn find_account<'s>(state: &'s State, id: &AccountId) -> Result<&'s Account, Rejection> {
    state
        .accounts
        .get(id)
        .ok_or_else(|| Rejection::AccountNotFound { account: id.clone() })
}

fn postable<'s>(state: &'s State, id: &AccountId) -> Result<&'s Account, Rejection> {
    let account = find_account(state, id)?;
    match account.status {
        AccountStatus::Open => Ok(account),
        AccountStatus::Frozen => Err(Rejection::AccountFrozen { account: id.clone() }),
        AccountStatus::Closed => Err(Rejection::AccountClosed { account: id.clone() }),
    }
}

/// An account's totals as they would be after the transfer.
struct Projected<'s> {
    id: &'s AccountId,
    account: &'s Account,
    debits: i64,
    credits: i64,
}

fn post_transfer(state: &State, c: &PostTransfer) -> Result<Vec<Event>, Rejection> {
    let event = c.to_event();
    if let Some(existing) = state.transfers.get(&c.id) {
        return if existing.fingerprint == event.fingerprint() {
            Ok(vec![])
        } else {
            Err(Rejection::IdempotencyConflict {
                kind: "transfer",
                id: c.id.to_string(),
            })
        };
    }
    for posting in c.postings() {
        let debit = postable(state, &posting.debit)?;
        let credit = postable(state, &posting.credit)?;
        if debit.asset != credit.asset {
            return Err(Rejection::AssetMismatch {
                debit: posting.debit.clone(),
                debit_asset: debit.asset.clone(),
                credit: posting.credit.clone(),
                credit_asset: credit.asset.clone(),
            });
        }
    }
    if let Some(original_id) = &c.reverses {
        check_reversal(state, original_id, c.postings())?;
    }
    check_asset_totals(state, c.postings())?;
    let projected = project_accounts(state, c.postings())?;
    for p in &projected {
        check_limits(p)?;
    }
    Ok(vec![Event::TransferPosted(event)])
}

fn check_reversal(state: &State, original_id: &TransferId, postings: &[Posting]) -> Result<(), Rejection> {
    let original = state
        .transfers
        .get(original_id)
        .ok_or_else(|| Rejection::TransferNotFound {
            transfer: original_id.clone(),
        })?;
    if let Some(reversed_by) = &original.reversed_by {
        return Err(Rejection::AlreadyReversed {
            transfer: original_id.clone(),
            reversed_by: reversed_by.clone(),
        });
    }
    let mut expected: Vec<Posting> = original
        .postings
        .iter()
        .map(|p| Posting {
            debit: p.credit.clone(),
            credit: p.debit.clone(),
            amount: p.amount,
        })
        .collect();
    let mut given = postings.to_vec();
    expected.sort_unstable();
    given.sort_unstable();
    if expected != given {
        return Err(Rejection::ReversalMismatch {
            transfer: original_id.clone(),
        });
    }
    Ok(())
}

/// Every account counter is bounded by its asset's total posted volume, so this one check keeps
/// all of them inside i64.
fn check_asset_totals(state: &State, postings: &[Posting]) -> Result<(), Rejection> {
    let mut totals: Vec<(&AssetCode, i64)> = Vec::new();
    for posting in postings {
        let account = find_account(state, &posting.debit)?;
        let code = &account.asset;
        let index = match totals.iter().position(|(c, _)| *c == code) {
            Some(index) => index,
            None => {
                let asset = state
                    .assets
                    .get(code)
                    .ok_or_else(|| Rejection::AssetNotFound { asset: code.clone() })?;
                totals.push((code, asset.posted));
                totals.len() - 1
            }
        };
        let total = &mut totals[index].1;
        *total = total
            .checked_add(posting.amount.get())
            .ok_or_else(|| Rejection::Overflow { asset: code.clone() })?;
    }
    Ok(())
}

fn project_accounts<'s>(state: &'s State, postings: &'s [Posting]) -> Result<Vec<Projected<'s>>, Rejection> {
    let mut projected: Vec<Projected<'s>> = Vec::with_capacity(postings.len() * 2);
    let mut entry = |id: &'s AccountId| -> Result<usize, Rejection> {
        if let Some(index) = projected.iter().position(|p| p.id == id) {
            return Ok(index);
        }
        let account = find_account(state, id)?;
        projected.push(Projected {
            id,
            account,
            debits: account.debits,
            credits: account.credits,
        });
        Ok(projected.len() - 1)
    };
    let mut moves = Vec::with_capacity(postings.len());
    for posting in postings {
        moves.push((entry(&posting.debit)?, entry(&posting.credit)?, posting.amount.get()));
    }
    for (debit, credit, amount) in moves {
        let account: &Account = projected[debit].account;
        let overflow = || Rejection::Overflow {
            asset: account.asset.clone(),
        };
        projected[debit].debits = projected[debit].debits.checked_add(amount).ok_or_else(overflow)?;
        projected[credit].credits = projected[credit].credits.checked_add(amount).ok_or_else(overflow)?;
    }
    Ok(projected)
}

fn check_limits(p: &Projected<'_>) -> Result<(), Rejection> {
    let flags = p.account.flags;
    let broken = if flags.debits_must_not_exceed_credits && p.debits > p.credits {
        Some(LimitFlag::DebitsMustNotExceedCredits)
    } else if flags.credits_must_not_exceed_debits && p.credits > p.debits {
        Some(LimitFlag::CreditsMustNotExceedDebits)
    } else {
        None
    };
    match broken {
        Some(flag) => Err(Rejection::LimitExceeded {
            account: p.id.clone(),
            flag,
            debits: p.debits,
            credits: p.credits,
        }),
        None => Ok(()),
    }
}
