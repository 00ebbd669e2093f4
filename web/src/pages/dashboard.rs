use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_dashboard;
use crate::api::types::{Asset, ServiceHealth};
use crate::components::common::{ErrorBox, Time, stream_href};
use crate::components::live::use_live;
use crate::money::format_amount;
use crate::pages::refresh_on;
use crate::pages::transfers::TransferTable;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let refresh = refresh_on(|_| true);
    let data = Resource::new(move || refresh.get(), |_| load_dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(dashboard) => view! {
                        <section aria-labelledby="health-title">
                            <h2 id="health-title">"Services"</h2>
                            <ServiceCards services=dashboard.services.clone()/>
                            <p class="muted">
                                {dashboard.projections.iter().map(|p| format!(
                                    "Projection {}: position {} of {} (lag {}). ", p.name, p.checkpoint, p.head, p.lag
                                )).collect::<String>()}
                            </p>
                        </section>
                        <section aria-labelledby="totals-title">
                            <h2 id="totals-title">"Totals per asset"</h2>
                            <AssetTable assets=dashboard.assets.clone()/>
                        </section>
                        <section aria-labelledby="recent-title">
                            <h2 id="recent-title">"Recent transfers"</h2>
                            <TransferTable rows=dashboard.recent.clone()/>
                            <p><a href="/transfers">"All transfers"</a></p>
                        </section>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
        <ActivityFeed/>
    }
}

#[component]
fn AssetTable(assets: Vec<Asset>) -> impl IntoView {
    if assets.is_empty() {
        return view! { <p class="muted">"No asset is registered yet."</p> }.into_any();
    }
    view! {
        <table class="totals">
            <thead><tr>
                <th scope="col">"Asset"</th><th scope="col">"Scale"</th><th scope="col" class="num">"Accounts"</th>
                <th scope="col" class="num">"Transfers"</th><th scope="col" class="num">"Total posted"</th>
            </tr></thead>
            <tbody>
                {assets.into_iter().map(|asset| view! {
                    <tr>
                        <th scope="row">{asset.code.clone()}</th>
                        <td>{asset.scale}</td>
                        <td class="num">{asset.accounts}</td>
                        <td class="num">{asset.transfers}</td>
                        <td class="num">{format_amount(asset.posted, asset.scale)}" "{asset.code}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn ServiceCards(services: Vec<ServiceHealth>) -> impl IntoView {
    view! {
        <ul class="cards">
            {services.into_iter().map(|service| {
                let state = if service.ready { "ready" } else { "down" };
                let name = service.name.clone();
                view! {
                    <li class=format!("card health-{state}") data-service=name>
                        <strong>{service.name}</strong>
                        <span class="badge">{if service.ready { "Ready" } else { "Not ready" }}</span>
                        <small class="muted">{service.url}</small>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// The live activity feed: log events as the projection applies them.
#[component]
fn ActivityFeed() -> impl IntoView {
    let live = use_live();
    let events = move || live.map(|live| live.recent.get()).unwrap_or_default();
    view! {
        <section aria-labelledby="feed-title" class="feed">
            <h2 id="feed-title">"Live activity"</h2>
            <ol class="feed-list" aria-live="polite">
                {move || {
                    let events = events();
                    if events.is_empty() {
                        return view! { <li class="muted">"Waiting for new events…"</li> }.into_any();
                    }
                    events.into_iter().map(|event| {
                        let summary = event.summary();
                        let what = match stream_href(&event.stream_id) {
                            Some(href) => view! { <a href=href>{summary}</a> }.into_any(),
                            None => view! { <span>{summary}</span> }.into_any(),
                        };
                        view! {
                            <li data-position=event.position>
                                <span class="pos">"#"{event.position}</span>" "
                                {what}" "
                                <Time at=event.recorded_at.clone()/>
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ol>
        </section>
    }
}
