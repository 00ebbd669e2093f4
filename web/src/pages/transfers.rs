use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{TransferRow, load_transfers};
use crate::components::common::{ErrorBox, Pager, Time};
use crate::pages::{query_param, refresh_on};

#[component]
pub fn TransfersPage() -> impl IntoView {
    let after = query_param("after");
    let refresh = refresh_on(|event| event.event_type == "TransferPosted");
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
                    let legs = transfer.postings.len();
                    let first = transfer.postings.first().cloned();
                    let amount = row.amounts.first().cloned().unwrap_or_default();
                    let more = if legs > 1 { format!(" (+{} more)", legs - 1) } else { String::new() };
                    view! {
                        <tr data-transfer=transfer.id.clone()>
                            <td>
                                <a href=format!("/transfers/{}", transfer.id)>{transfer.id.clone()}</a>
                                {transfer.reverses.as_ref().map(|_| view! { " " <span class="tag">"reversal"</span> })}
                                {transfer.reversed_by.as_ref().map(|_| view! { " " <span class="tag">"reversed"</span> })}
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
