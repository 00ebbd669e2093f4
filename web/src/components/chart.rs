//! A balance-over-time line drawn as SVG by the app (no chart library, no CDN).

use leptos::prelude::*;

use crate::money::format_amount;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;
const PAD: f64 = 8.0;

/// `points` are `(position, balance)`, oldest first; the x axis is the order of entries.
#[component]
pub fn BalanceChart(points: Vec<(i64, i64)>, scale: u8, asset: String) -> impl IntoView {
    if points.len() < 2 {
        return view! { <p class="muted">"The chart appears after two entries."</p> }.into_any();
    }
    let (low, high) = points
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, b)| (lo.min(*b), hi.max(*b)));
    let low = low.min(0);
    let span = (high.saturating_sub(low)).max(1) as f64;
    let step = (WIDTH - 2.0 * PAD) / (points.len() - 1) as f64;
    let y = |balance: i64| HEIGHT - PAD - ((balance.saturating_sub(low)) as f64 / span) * (HEIGHT - 2.0 * PAD);
    let line: String = points
        .iter()
        .enumerate()
        .map(|(i, (_, balance))| format!("{:.1},{:.1}", PAD + i as f64 * step, y(*balance)))
        .collect::<Vec<_>>()
        .join(" ");
    let zero = y(0);
    let first = points.first().map_or(0, |p| p.1);
    let last = points.last().map_or(0, |p| p.1);
    let label = format!(
        "Balance over the last {} entries, from {} to {} {asset}; lowest {}, highest {}.",
        points.len(),
        format_amount(first, scale),
        format_amount(last, scale),
        format_amount(low, scale),
        format_amount(high, scale),
    );
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label.clone() preserveAspectRatio="none">
                <line class="zero" x1=PAD x2=WIDTH - PAD y1=zero y2=zero></line>
                <polyline class="balance" points=line></polyline>
            </svg>
            <figcaption>{label}</figcaption>
        </figure>
    }
    .into_any()
}
