//! The metadata of an account or a transfer, with forms that set and remove its keys.

use leptos::prelude::*;
use serde_json::Value;

use crate::api::{MetadataOf, SetMetadata};

/// The metadata, a key per row with a form to remove it, and a form that sets a key to a text
/// value (an empty value removes it). Each change is an event; `key` (the idempotency key's stem)
/// must be new whenever the metadata may have changed, so a double submit is one change and a
/// later one is another.
#[component]
pub fn MetadataEditor(
    of: MetadataOf,
    id: String,
    metadata: Value,
    key: String,
    annotate: ServerAction<SetMetadata>,
) -> impl IntoView {
    let entries: Vec<(String, String)> = metadata
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default();
    let error = move || annotate.value().get().and_then(Result::err);
    let of = of.as_str();
    view! {
        <section aria-labelledby="metadata-title" class="metadata">
            <h2 id="metadata-title">"Metadata"</h2>
            {move || error().map(|e| view! { <p class="form-error" role="alert">{e.message}</p> })}
            {if entries.is_empty() {
                view! { <p class="muted">"No metadata."</p> }.into_any()
            } else {
                view! {
                    <table class="metadata">
                        <thead><tr><th scope="col">"Key"</th><th scope="col">"Value"</th><th scope="col"><span class="visually-hidden">"Remove"</span></th></tr></thead>
                        <tbody>
                            // Keys are any text: a row's form is named by its index.
                            {entries.into_iter().enumerate().map(|(index, (entry, value))| {
                                let id = id.clone();
                                let key = format!("{key}:remove:{index}");
                                let label = format!("Remove {entry}");
                                let (data_key, cell) = (entry.clone(), entry.clone());
                                view! {
                                    <tr data-key=data_key>
                                        <th scope="row">{cell}</th>
                                        <td>{value}</td>
                                        <td>
                                            <ActionForm action=annotate attr:class="inline">
                                                <input type="hidden" name="of" value=of/>
                                                <input type="hidden" name="id" value=id/>
                                                <input type="hidden" name="entry_key" value=entry/>
                                                <input type="hidden" name="value" value=""/>
                                                <input type="hidden" name="key" value=key/>
                                                <button type="submit" aria-label=label>"Remove"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <ActionForm action=annotate attr:class="inline">
                <input type="hidden" name="of" value=of/>
                <input type="hidden" name="id" value=id.clone()/>
                <input type="hidden" name="key" value=format!("{key}:set")/>
                <label>"Key" <input type="text" name="entry_key" required maxlength="256"/></label>
                <label>"Value" <input type="text" name="value" maxlength="1024"/></label>
                <button type="submit">"Set"</button>
            </ActionForm>
        </section>
    }
}

/// The two inputs of a list filter on one metadata key's text value, in a `filters` form.
#[component]
pub fn MetadataFilter(key: Memo<Option<String>>, value: Memo<Option<String>>) -> impl IntoView {
    view! {
        <label>"Metadata key"
            <input type="text" name="metadata_key" value=move || key.get().unwrap_or_default() placeholder="region"/>
        </label>
        <label>"equals"
            <input type="text" name="metadata_value" value=move || value.get().unwrap_or_default() placeholder="eu"/>
        </label>
    }
}
