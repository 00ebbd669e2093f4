use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{TransferRow, load_transfers};
use crate::components::common::{ErrorBox, Pager, Time};
use crate::pages::{query_param, refresh_on};

#[component]
pub fn TransfersPage() -> impl IntoView {
    let after = query_param("after");
    let refresh = refresh_on(|event| event.stream_id.starts_with("transfer:"));
    let data = Resource::new(
        move || (after.get().and_then(|a| a.parse::<i64>().ok()), refresh.get()),
        |(after, _)| load_transfers(after),
    );
    view! {
        <Title text="Transfers"/>
        <div class="heading">
            <h1>"Transfers"</h1>
            <a class="button" href="/transfers/new">"New transfer"</a>
        </div>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! {
                        <TransferTable rows=page.items/>
                        <Pager first=Some("/transfers".to_owned()) next=page.next.map(|next| format!("/transfers?after={next}"))
                            next_label="Older transfers"/>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Transfers, newest first: id, what moved where, when.
#[component]
pub fn TransferTable(rows: Vec<TransferRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No transfers yet."</p> }.into_any();
    }
    view! {
        <table class="transfers">
            <thead><tr>
                <th scope="col">"Transfer"</th><th scope="col">"From (debit)"</th><th scope="col">"To (credit)"</th>
                <th scope="col" class="num">"Amount"</th><th scope="col">"Recorded"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let transfer = row.transfer;
                    // A hold that moved nothing (yet) is shown by what it holds.
                    let (shown, amounts) = match &transfer.held {
                        Some(held) if transfer.postings.is_empty() => (held.clone(), row.held_amounts),
                        _ => (transfer.postings.clone(), row.amounts),
                    };
                    let legs = shown.len();
                    let first = shown.first().cloned();
                    let amount = amounts.first().cloned().unwrap_or_default();
                    let hold = transfer.held.as_ref().map(|_| format!("hold: {}", transfer.status));
                    let more = if legs > 1 { format!(" (+{} more)", legs - 1) } else { String::new() };
                    view! {
                        <tr data-transfer=transfer.id.clone()>
                            <td>
                                <a href=format!("/transfers/{}", transfer.id)>{transfer.id.clone()}</a>
                                {transfer.reverses.as_ref().map(|_| view! { " " <span class="tag">"reversal"</span> })}
                                {transfer.reversed_by.as_ref().map(|_| view! { " " <span class="tag">"reversed"</span> })}
                                {hold.map(|status| view! { " " <span class="tag">{status}</span> })}
                            </td>
                            <td>{first.as_ref().map(|p| view! { <a href=format!("/accounts/{}", p.debit)>{p.debit.clone()}</a> })}</td>
                            <td>{first.as_ref().map(|p| view! { <a href=format!("/accounts/{}", p.credit)>{p.credit.clone()}</a> })}</td>
                            <td class="num">{amount}{more}</td>
                            <td><Time at=transfer.recorded_at.clone()/></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
