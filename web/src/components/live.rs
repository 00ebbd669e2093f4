//! The live connection: one `EventSource` on `/live` per page load, opened in the browser only,
//! shared by every page through context.

use leptos::prelude::*;

use crate::api::types::{LogEvent, Progress};

/// How many recent events the activity feed keeps.
#[cfg(feature = "hydrate")]
const RECENT: usize = 20;

#[derive(Clone, Copy)]
pub struct Live {
    /// The last event received (pages watch it to refresh what it touched).
    pub last: RwSignal<Option<LogEvent>>,
    /// The latest events, newest first.
    pub recent: RwSignal<Vec<LogEvent>>,
    pub progress: RwSignal<Option<Progress>>,
    pub connected: RwSignal<bool>,
}

impl Live {
    #[cfg(feature = "hydrate")]
    fn receive(&self, event: LogEvent) {
        self.recent.update(|recent| {
            recent.insert(0, event.clone());
            recent.truncate(RECENT);
        });
        self.last.set(Some(event));
    }
}

pub fn provide_live() -> Live {
    let live = Live {
        last: RwSignal::new(None),
        recent: RwSignal::new(Vec::new()),
        progress: RwSignal::new(None),
        connected: RwSignal::new(false),
    };
    provide_context(live);
    // Effects run only in the browser.
    Effect::new(move |_| connect(live));
    live
}

pub fn use_live() -> Option<Live> {
    use_context::<Live>()
}

#[cfg(feature = "hydrate")]
fn connect(live: Live) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{Event, EventSource, MessageEvent};

    let Ok(source) = EventSource::new("/live") else {
        return;
    };
    let on_log = Closure::<dyn FnMut(MessageEvent)>::new(move |message: MessageEvent| {
        if let Some(event) = message
            .data()
            .as_string()
            .and_then(|text| serde_json::from_str::<LogEvent>(&text).ok())
        {
            live.receive(event);
        }
    });
    let on_progress = Closure::<dyn FnMut(MessageEvent)>::new(move |message: MessageEvent| {
        if let Some(progress) = message
            .data()
            .as_string()
            .and_then(|text| serde_json::from_str::<Progress>(&text).ok())
        {
            live.progress.set(Some(progress));
            live.connected.set(true);
        }
    });
    let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| live.connected.set(true));
    let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| live.connected.set(false));
    let _ = source.add_event_listener_with_callback("log", on_log.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The connection lives as long as the page: the browser closes it on unload.
    on_log.forget();
    on_progress.forget();
    on_open.forget();
    on_error.forget();
}

#[cfg(not(feature = "hydrate"))]
fn connect(_live: Live) {}

/// The header's indicator: live or not, and the projection's lag.
#[component]
pub fn LiveStatus() -> impl IntoView {
    let live = use_live();
    let connected = move || live.is_some_and(|live| live.connected.get());
    let lag = move || live.and_then(|live| live.progress.get()).map(|p| p.lag);
    view! {
        <p class="live-status" role="status" aria-live="polite" data-live=move || connected().to_string()>
            <span class="dot" aria-hidden="true"></span>
            {move || match (connected(), lag()) {
                (true, Some(lag)) => format!("Live · lag {lag}"),
                (true, None) => "Live".to_owned(),
                (false, _) => "Not live".to_owned(),
            }}
        </p>
    }
}
