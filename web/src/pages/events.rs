use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_events;
use crate::components::common::{ErrorBox, Pager, Time, stream_href};
use crate::pages::query_param;

const TYPES: [&str; 13] = [
    "TransferPosted",
    "TransferPending",
    "PendingPosted",
    "PendingVoided",
    "PendingExpired",
    "AccountOpened",
    "AccountFrozen",
    "AccountUnfrozen",
    "AccountClosed",
    "AssetRegistered",
    "AccountMetadataSet",
    "TransferMetadataSet",
    "PersonalDataErased",
];

#[component]
pub fn EventsPage() -> impl IntoView {
    let after = query_param("after");
    let event_type = query_param("type");
    let stream = query_param("stream");
    let data = Resource::new(
        move || {
            (
                after.get().and_then(|a| a.parse::<i64>().ok()),
                event_type.get(),
                stream.get(),
            )
        },
        |(after, event_type, stream)| load_events(after, event_type, stream),
    );
    view! {
        <Title text="Event log"/>
        <h1>"Event log"</h1>
        <p class="muted">"The log itself, newest first (a stream reads oldest first): every event with its hash and the hash of the one before it."</p>
        <form class="filters" method="get" action="/log" role="search">
            <label>"Stream"
                <input type="search" name="stream" value=move || stream.get().unwrap_or_default() placeholder="account:alice"/>
            </label>
            <label>"Type"
                <select name="type">
                    <option value="">"All"</option>
                    {TYPES.iter().map(|t| view! {
                        <option value=*t selected=move || event_type.get().as_deref() == Some(*t)>{*t}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => {
                        let next = page.next.map(|next| {
                            let mut query = vec![format!("after={next}")];
                            for (name, value) in [("type", event_type.get()), ("stream", stream.get())] {
                                if let Some(value) = value {
                                    query.push(format!("{name}={value}"));
                                }
                            }
                            format!("/log?{}", query.join("&"))
                        });
                        view! {
                            {if page.items.is_empty() { Some(view! { <p class="muted">"No events match."</p> }) } else { None }}
                            <ol class="log">
                                {page.items.into_iter().map(|event| {
                                    let data = serde_json::to_string_pretty(&event.data).unwrap_or_default();
                                    let metadata = serde_json::to_string_pretty(&event.metadata).unwrap_or_default();
                                    let stream_link = match stream_href(&event.stream_id) {
                                        Some(href) => view! { <a href=href>{event.stream_id.clone()}</a> }.into_any(),
                                        None => view! { <span>{event.stream_id.clone()}</span> }.into_any(),
                                    };
                                    view! {
                                        <li class="log-event" data-position=event.position>
                                            <details>
                                                <summary>
                                                    <span class="pos">"#"{event.position}</span>" "
                                                    <strong>{event.event_type.clone()}</strong>" "
                                                    {stream_link}" v"{event.stream_version}" "
                                                    <Time at=event.recorded_at.clone()/>
                                                </summary>
                                                <dl class="facts">
                                                    <dt>"Event id"</dt><dd class="mono">{event.event_id.clone()}</dd>
                                                    <dt>"Schema"</dt><dd>{event.schema_version}</dd>
                                                    <dt>"Hash"</dt><dd class="mono hash">{event.hash.clone()}</dd>
                                                    <dt>"Previous hash"</dt><dd class="mono hash">{event.prev_hash.clone()}</dd>
                                                </dl>
                                                <h3>"Data"</h3>
                                                <pre class="json">{data}</pre>
                                                <h3>"Metadata"</h3>
                                                <pre class="json">{metadata}</pre>
                                            </details>
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                            <Pager first=None next next_label="More events"/>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}
