//! Demo data for `cargo xtask up --demo`, loaded through command-api's public HTTP API.
//!
//! Going through the API (not SQL) makes the demo a smoke test of the write path, and keeps it
//! valid whatever the storage looks like. Every id is fixed, so a second `--demo` run replays
//! identical requests, which the API answers as idempotent replays (200).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::http;

const TIMEOUT: Duration = Duration::from_secs(10);
const CUSTOMERS: [&str; 3] = ["alice", "bob", "carol"];
/// Payments per asset between customers, each with a fee leg.
const PAYMENTS: i64 = 20;

/// One request of the demo script.
struct Call {
    path: &'static str,
    body: Value,
}

pub fn load(command_api: SocketAddr, token: &str) -> Result<()> {
    let calls = script();
    note!("loading demo data through command-api ({} requests)", calls.len());
    for call in &calls {
        let body = call.body.to_string();
        let response = http::post_json(command_api, call.path, &body, token, TIMEOUT)?;
        if !matches!(response.status, 200 | 201) {
            bail!(
                "demo data: POST {} {body}\nanswered {}: {}",
                call.path,
                response.status,
                response.body
            );
        }
    }
    note!("demo data loaded");
    Ok(())
}

/// The whole demo, in order: assets, then accounts, then transfers.
fn script() -> Vec<Call> {
    let mut calls = Vec::new();
    for asset in ["EUR", "USD"] {
        calls.push(Call {
            path: "/v1/assets",
            body: json!({ "code": asset, "scale": 2 }),
        });
    }
    for asset in ["EUR", "USD"] {
        calls.extend(accounts(asset));
    }
    for asset in ["EUR", "USD"] {
        calls.extend(transfers(asset));
    }
    calls
}

fn bank(asset: &str) -> String {
    format!("assets:bank:{}", asset.to_lowercase())
}

fn capital(asset: &str) -> String {
    format!("equity:capital:{}", asset.to_lowercase())
}

fn fees(asset: &str) -> String {
    format!("revenue:fees:{}", asset.to_lowercase())
}

fn customer(name: &str, asset: &str) -> String {
    format!("liabilities:customers:{name}:{}", asset.to_lowercase())
}

fn accounts(asset: &str) -> Vec<Call> {
    let account = |id: String, name: String, normal_side: &str, flags: Value, metadata: Value| Call {
        path: "/v1/accounts",
        body: json!({
            "id": id,
            "asset": asset,
            "name": name,
            "normal_side": normal_side,
            "flags": flags,
            "metadata": metadata,
        }),
    };
    let no_flags = json!({});
    let mut calls = vec![
        account(
            bank(asset),
            format!("Bank ({asset})"),
            "debit",
            no_flags.clone(),
            json!({}),
        ),
        account(
            capital(asset),
            format!("Capital ({asset})"),
            "credit",
            no_flags.clone(),
            json!({}),
        ),
        account(fees(asset), format!("Fees ({asset})"), "credit", no_flags, json!({})),
    ];
    for name in CUSTOMERS {
        calls.push(account(
            customer(name, asset),
            format!("Customer {name} ({asset})"),
            "credit",
            // Customers' money: the bank may never pay out more than they hold.
            json!({ "debits_must_not_exceed_credits": true }),
            json!({ "customer": name }),
        ));
    }
    calls
}

fn transfer(id: String, postings: Vec<Value>, metadata: Value) -> Call {
    Call {
        path: "/v1/transfers",
        body: json!({ "id": id, "postings": postings, "metadata": metadata }),
    }
}

fn posting(debit: &str, credit: &str, amount: i64) -> Value {
    json!({ "debit": debit, "credit": credit, "amount": amount })
}

/// 26 transfers per asset: a capital injection, deposits, payments with fees, a withdrawal and
/// a reversal. Amounts are in minor units (cents).
fn transfers(asset: &str) -> Vec<Call> {
    let prefix = format!("demo-{}", asset.to_lowercase());
    let mut calls = vec![transfer(
        format!("{prefix}-capital"),
        vec![posting(&bank(asset), &capital(asset), minor(1_000_000))],
        json!({ "kind": "capital_injection" }),
    )];
    for (name, amount) in CUSTOMERS.iter().zip([minor(5_000), minor(3_000), minor(2_000)]) {
        calls.push(transfer(
            format!("{prefix}-deposit-{name}"),
            vec![posting(&bank(asset), &customer(name, asset), amount)],
            json!({ "kind": "deposit" }),
        ));
    }
    let mut reversal = None;
    for i in 1..=PAYMENTS {
        let (payer, payee, amount, fee) = payment(i);
        let id = format!("{prefix}-payment-{i:02}");
        let postings = vec![
            posting(&customer(payer, asset), &customer(payee, asset), amount),
            posting(&customer(payer, asset), &fees(asset), fee),
        ];
        if i == 3 {
            // The reversal undoes every leg of this payment.
            reversal = Some(Call {
                path: "/v1/transfers",
                body: json!({
                    "id": format!("{prefix}-reversal-of-payment-{i:02}"),
                    "postings": [
                        posting(&customer(payee, asset), &customer(payer, asset), amount),
                        posting(&fees(asset), &customer(payer, asset), fee),
                    ],
                    "reverses": id,
                    "metadata": { "kind": "reversal", "reason": "disputed by the payer" },
                }),
            });
        }
        calls.push(transfer(
            id,
            postings,
            json!({ "kind": "payment", "memo": format!("invoice {}", 1000 + i) }),
        ));
    }
    calls.push(transfer(
        format!("{prefix}-withdrawal-alice"),
        vec![posting(&customer("alice", asset), &bank(asset), minor(500))],
        json!({ "kind": "withdrawal" }),
    ));
    calls.extend(reversal);
    calls
}

/// Whole units of a scale-2 asset (EUR, USD) in minor units (cents).
const fn minor(units: i64) -> i64 {
    units * 100
}

/// Payment `i`: customers take turns paying the next one; amounts vary between 10.00 and
/// about 100.00, with a 1 % fee (at least 0.01).
fn payment(i: i64) -> (&'static str, &'static str, i64, i64) {
    let n = CUSTOMERS.len();
    let turn = usize::try_from(i).unwrap_or_default() % n;
    let amount = minor(10) + (i * 4_733) % 9_000;
    let fee = (amount / 100).max(1);
    (CUSTOMERS[turn], CUSTOMERS[(turn + 1) % n], amount, fee)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn has_about_fifty_transfers_with_unique_ids() {
        let calls = script();
        let transfers: Vec<&Call> = calls.iter().filter(|call| call.path == "/v1/transfers").collect();
        assert!((45..=60).contains(&transfers.len()), "{} transfers", transfers.len());
        let ids: HashSet<&str> = calls.iter().filter_map(|call| call.body["id"].as_str()).collect();
        let with_ids = calls.iter().filter(|call| call.path != "/v1/assets").count();
        assert_eq!(ids.len(), with_ids, "ids must be unique");
    }

    /// Replays the transfers on credit-normal balances: no customer account may go below zero,
    /// or command-api would (rightly) reject the demo.
    #[test]
    fn never_overdraws_a_customer() {
        let mut balances: HashMap<String, i64> = HashMap::new();
        for call in script().iter().filter(|call| call.path == "/v1/transfers") {
            for leg in call.body["postings"].as_array().into_iter().flatten() {
                let amount = leg["amount"].as_i64().unwrap_or_default();
                assert!(amount > 0);
                let debit = leg["debit"].as_str().unwrap_or_default().to_owned();
                let credit = leg["credit"].as_str().unwrap_or_default().to_owned();
                *balances.entry(debit.clone()).or_default() -= amount;
                *balances.entry(credit).or_default() += amount;
                if debit.starts_with("liabilities:customers:") {
                    assert!(balances[&debit] >= 0, "{debit} overdrawn by {}", call.body["id"]);
                }
            }
        }
    }

    #[test]
    fn accounts_exist_for_every_posting() {
        let calls = script();
        let accounts: HashSet<&str> = calls
            .iter()
            .filter(|call| call.path == "/v1/accounts")
            .filter_map(|call| call.body["id"].as_str())
            .collect();
        for call in calls.iter().filter(|call| call.path == "/v1/transfers") {
            for leg in call.body["postings"].as_array().into_iter().flatten() {
                for side in ["debit", "credit"] {
                    let account = leg[side].as_str().unwrap_or_default();
                    assert!(accounts.contains(account), "unknown account {account}");
                }
            }
        }
    }
}
