//! The trial balance: every account's debits, credits and balance per asset, and whether each
//! asset's books balance, now or at a point of the log, by recorded or by effective time.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_trial_balance;
use crate::api::types::{AssetBooks, TrialBalance};
use crate::components::common::{Amount, ErrorBox, Time};
use crate::pages::query_param;

#[component]
pub fn TrialBalancePage() -> impl IntoView {
    let at_position = query_param("at_position");
    let at_time = query_param("at_time");
    let as_of_effective = query_param("as_of_effective");
    let data = Resource::new(
        move || (at_position.get(), at_time.get(), as_of_effective.get()),
        |(at_position, at_time, as_of_effective)| load_trial_balance(at_position, at_time, as_of_effective),
    );
    view! {
        <Title text="Trial balance"/>
        <h1>"Trial balance"</h1>
        <p class="muted">
            "Every account's debits, credits and balance, and each asset's totals: debits equal credits in books that balance. "
            "Now, or as the log stood at a position or a time; by effective time, only the legs taking effect by then (bi-temporal)."
        </p>
        <form class="filters" method="get" action="/trial-balance" role="search">
            <label>"As recorded by, UTC"
                <input type="datetime-local" step="1" name="at_time" value=move || at_time.get().unwrap_or_default()/>
            </label>
            <label>"Or at log position"
                <input type="number" min="0" name="at_position" value=move || at_position.get().unwrap_or_default()/>
            </label>
            <label>"Effective by, UTC"
                <input type="datetime-local" step="1" name="as_of_effective" value=move || as_of_effective.get().unwrap_or_default()/>
            </label>
            <button type="submit">"Show"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(books) => view! { <Books books/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Books(books: TrialBalance) -> impl IntoView {
    let TrialBalance {
        at_position,
        as_of_effective,
        assets,
    } = books;
    view! {
        <p data-field="point">
            "As the log stood at position " <strong>{at_position}</strong>
            {as_of_effective.map(|at| view! { ", counting the legs effective by " <Time at/> })}
            "."
        </p>
        {if assets.is_empty() {
            view! { <p class="muted">"No accounts yet."</p> }.into_any()
        } else {
            assets.into_iter().map(|books| view! { <AssetSection books/> }).collect_view().into_any()
        }}
    }
}

#[component]
fn AssetSection(books: AssetBooks) -> impl IntoView {
    let AssetBooks {
        asset,
        scale,
        debits,
        credits,
        balanced,
        accounts,
        hidden,
    } = books;
    let title = format!("books-{asset}");
    let (verdict, class) = if balanced {
        ("Balanced", "status status-balanced")
    } else {
        ("Out of balance", "status status-unbalanced")
    };
    view! {
        <section class="books" aria-labelledby=title.clone() data-asset=asset.clone()>
            <div class="heading">
                <h2 id=title.clone()>{asset.clone()}</h2>
                <span class=class data-field="balanced">{verdict}</span>
            </div>
            <table class="trial-balance">
                <thead><tr>
                    <th scope="col">"Account"</th><th scope="col">"Normal side"</th>
                    <th scope="col" class="num">"Debits"</th><th scope="col" class="num">"Credits"</th>
                    <th scope="col" class="num">"Balance"</th>
                </tr></thead>
                <tbody>
                    {accounts.into_iter().map(|line| {
                        let asset = asset.clone();
                        view! {
                            <tr data-account=line.id.clone()>
                                <td><a href=format!("/accounts/{}", line.id)>{line.id.clone()}</a></td>
                                <td>{line.normal_side}</td>
                                <td class="num"><Amount minor=line.debits scale asset=asset.clone()/></td>
                                <td class="num"><Amount minor=line.credits scale asset=asset.clone()/></td>
                                <td class="num"><Amount minor=line.balance scale asset/></td>
                            </tr>
                        }
                    }).collect_view()}
                    {(hidden > 0).then(|| view! {
                        <tr><td colspan="5" class="muted">{format!("{hidden} more accounts, in the totals but not listed here.")}</td></tr>
                    })}
                </tbody>
                <tfoot><tr data-field="totals">
                    <th scope="row" colspan="2">"Total"</th>
                    <td class="num"><Amount minor=debits scale asset=asset.clone()/></td>
                    <td class="num"><Amount minor=credits scale asset=asset.clone()/></td>
                    <td></td>
                </tr></tfoot>
            </table>
        </section>
    }
}
