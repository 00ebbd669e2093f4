//! Aggregated balances: the accounts an id pattern, a metadata value and an asset select, summed
//! per asset and, optionally, per value of a metadata key.

use leptos::prelude::*;
use leptos_meta::Title;
use serde_json::Value;

use crate::api::types::BalanceGroup;
use crate::api::{BalanceSums, load_balances};
use crate::components::common::{Amount, ErrorBox};
use crate::components::metadata::MetadataFilter;
use crate::pages::query_param;

#[component]
pub fn BalancesPage() -> impl IntoView {
    let accounts = query_param("accounts");
    let metadata_key = query_param("metadata_key");
    let metadata_value = query_param("metadata_value");
    let asset = query_param("asset");
    let group_by = query_param("group_by");
    let data = Resource::new(
        move || {
            (
                accounts.get(),
                metadata_key.get(),
                metadata_value.get(),
                asset.get(),
                group_by.get(),
            )
        },
        |(accounts, key, value, asset, group_by)| load_balances(accounts, key, value, asset, group_by),
    );
    let text = |param: Memo<Option<String>>| move || param.get().unwrap_or_default();
    view! {
        <Title text="Balances"/>
        <h1>"Balances"</h1>
        <p class="muted">
            "The current totals of the accounts selected, summed per asset (amounts in different assets never add up), "
            "and per value of a metadata key when grouped."
        </p>
        <form class="filters" method="get" action="/balances" role="search">
            <label>"Accounts (id pattern)"
                <input type="search" name="accounts" value=text(accounts) placeholder="users:*:wallet" aria-describedby="accounts-help"/>
            </label>
            <MetadataFilter key=metadata_key value=metadata_value/>
            <label>"Asset"
                <input type="text" name="asset" value=text(asset) placeholder="all" size="8"/>
            </label>
            <label>"Group by metadata key"
                <input type="text" name="group_by" value=text(group_by) placeholder="tier"/>
            </label>
            <button type="submit">"Sum"</button>
        </form>
        <p id="accounts-help" class="muted">
            "In a pattern, " <code>"*"</code> " stands for one segment between colons: "
            <code>"users:*:wallet"</code> " matches " <code>"users:ann:wallet"</code> "; without " <code>"*"</code>
            ", the account itself. Blank: every account."
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(sums) => view! { <Groups sums/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Groups(sums: BalanceSums) -> impl IntoView {
    let BalanceSums { balances, scales } = sums;
    let grouped = balances.group_by.clone();
    if balances.groups.is_empty() {
        return view! { <p class="muted">"No account matches."</p> }.into_any();
    }
    view! {
        <table class="balance-groups">
            <caption>{format!("As the projection stood at log position {}", balances.at_position)}</caption>
            <thead><tr>
                <th scope="col">"Asset"</th>
                {grouped.clone().map(|key| view! { <th scope="col">{key}</th> })}
                <th scope="col" class="num">"Accounts"</th>
                <th scope="col" class="num">"Debits"</th><th scope="col" class="num">"Credits"</th>
                <th scope="col" class="num">"Balance"</th><th scope="col" class="num">"Held"</th>
                <th scope="col" class="num">"Available"</th>
            </tr></thead>
            <tbody>
                {balances.groups.into_iter().map(|group| {
                    let scale = scales.get(&group.asset).copied().unwrap_or(0);
                    view! { <GroupRow group scale grouped=grouped.is_some()/> }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn GroupRow(group: BalanceGroup, scale: u8, grouped: bool) -> impl IntoView {
    let asset = group.asset.clone();
    let value = shown(group.value.as_ref().unwrap_or(&Value::Null));
    let held = group.balance - group.available;
    view! {
        <tr data-asset=asset.clone() data-value=grouped.then(|| value.clone())>
            <td>{asset.clone()}</td>
            {grouped.then(|| view! { <td>{value.clone()}</td> })}
            <td class="num" data-field="accounts">{group.accounts}</td>
            <td class="num"><Amount minor=group.debits scale asset=asset.clone()/></td>
            <td class="num"><Amount minor=group.credits scale asset=asset.clone()/></td>
            <td class="num" data-field="balance"><Amount minor=group.balance scale asset=asset.clone()/></td>
            <td class="num" data-field="held"><Amount minor=held scale asset=asset.clone()/></td>
            <td class="num" data-field="available"><Amount minor=group.available scale asset=asset.clone()/></td>
        </tr>
    }
}

/// A grouping value for people: text as it is, anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}
