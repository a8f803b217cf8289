//! Small components shared by the screens: labelled fields with their error
//! message, and a modal dialog built on the native `<dialog>` element (which
//! traps focus and returns it to the opener when closed).

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// A labelled text input bound to `value`, with its error shown under it and
/// announced to screen readers.
#[component]
pub fn TextField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] input_type: Option<&'static str>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        move || {
            let mut ids = Vec::new();
            if hint.is_some() {
                ids.push(hint_id.clone());
            }
            if error.get().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=id>{label}</label>
            <input
                id=id
                name=id
                type=input_type.unwrap_or("text")
                autocomplete=autocomplete.unwrap_or("off")
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=described
            />
            {hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> })}
            <FieldError id=error_id error=error/>
        </div>
    }
}

/// The message under an invalid field.
#[component]
pub fn FieldError(id: String, #[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! { <p class="field-error" id=id.clone() data-testid="field-error">{e}</p> }
        })
    }
}

/// A modal dialog. `open` shows and hides it; Escape and the close button
/// set it to false.
#[component]
pub fn Dialog(
    open: RwSignal<bool>,
    title: Signal<String>,
    #[prop(optional)] testid: Option<&'static str>,
    children: ChildrenFn,
) -> impl IntoView {
    let node = NodeRef::<leptos::html::Dialog>::new();
    let title_id = format!("dialog-title-{}", (js_sys::Math::random() * 1e9) as u64);
    let title_ref = title_id.clone();
    Effect::new(move |_| {
        let want = open.get();
        if let Some(d) = node.get() {
            let d: &web_sys::HtmlDialogElement = d.unchecked_ref();
            if want && !d.open() {
                let _ = d.show_modal();
            } else if !want && d.open() {
                d.close();
            }
        }
    });
    view! {
        <dialog
            node_ref=node
            class="dialog"
            aria-labelledby=title_ref
            data-testid=testid
            on:close=move |_| open.set(false)
        >
            <div class="dialog-head">
                <h2 id=title_id>{move || title.get()}</h2>
                <button class="btn ghost small" aria-label="Close" on:click=move |_| open.set(false)>"✕"</button>
            </div>
            {move || open.get().then(|| children())}
        </dialog>
    }
}
