//! "A new version of Rapport is available": the banner that offers a
//! deployed update (see [`crate::pwa`]) without ever costing the user what
//! they typed.
//!
//! Reloading is only ever offered. While a form holds input that is not
//! saved, or an edit failed to save and waits in memory for a retry, the
//! banner says so and offers "Reload when saved" instead: the reload then
//! happens by itself once nothing is unsaved (the form was saved, or left).

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::pwa::{Pwa, Update};
use crate::state::{use_app, AppState, SaveState};

#[component]
pub fn UpdateBanner() -> impl IntoView {
    let Some(pwa) = use_context::<Pwa>() else { return ().into_any() };
    let app = use_app();
    let update = pwa.update();
    let unsaved = UnsavedInput::watch(app, update);
    // The user asked to reload as soon as their input is saved.
    let deferred = RwSignal::new(false);
    let dismissed = RwSignal::new(false);

    Effect::new(move |_| {
        if deferred.get() && !unsaved.dirty.get() && update.get() == Update::Ready {
            pwa.apply_update();
        }
    });

    let banner = move || {
        let state = update.get();
        if state == Update::None || (dismissed.get() && state == Update::Ready) {
            return None;
        }
        let (detail, actions) = match (state, unsaved.dirty.get(), deferred.get()) {
            (Update::Applying, ..) => ("Updating…", ().into_any()),
            (_, _, true) => (
                "It will load as soon as your changes are saved.",
                view! {
                    <button class="btn small ghost" on:click=move |_| deferred.set(false)>"Don't reload"</button>
                }
                .into_any(),
            ),
            (_, true, false) => (
                "You have changes that are not saved yet: save or cancel them first.",
                view! {
                    <button class="btn small primary" on:click=move |_| deferred.set(true)>"Reload when saved"</button>
                    <button class="btn small ghost" on:click=move |_| dismissed.set(true)>"Later"</button>
                }
                .into_any(),
            ),
            (_, false, false) => (
                "Reload to start using it. Your data stays on this device.",
                view! {
                    <button class="btn small primary" on:click=move |_| pwa.apply_update()>"Reload"</button>
                    <button class="btn small ghost" on:click=move |_| dismissed.set(true)>"Later"</button>
                }
                .into_any(),
            ),
        };
        Some(view! {
            <div class="banner update" role="status" data-testid="update-banner">
                <p class="update-text">
                    <strong>"A new version of Rapport is available."</strong>
                    " "
                    <span class="update-detail">{detail}</span>
                </p>
                <div class="update-actions">{actions}</div>
            </div>
        })
    };
    banner.into_any()
}

/// Whether anything on screen would be lost by a reload: a form whose
/// fields differ from what they held when the user first focused it, or an
/// edit that is still saving or failed to save.
///
/// Forms are compared by value (the app's inputs are bound with
/// `prop:value`, so `defaultValue` says nothing). A form typed into without
/// a focus first has no baseline and counts as changed. After a form is
/// submitted and the save succeeds, what it holds becomes its new baseline
/// (unless it shows validation errors); a form that leaves the page no
/// longer counts.
#[derive(Clone, Copy)]
struct UnsavedInput {
    dirty: RwSignal<bool>,
    /// Forms seen on the page with their baseline (`None`: unknown).
    forms: StoredValue<Vec<(web_sys::Element, Option<String>)>, LocalStorage>,
    /// Forms submitted since the last save finished.
    submitted: StoredValue<Vec<web_sys::Element>, LocalStorage>,
}

impl UnsavedInput {
    fn watch(app: AppState, update: Signal<Update>) -> Self {
        let this = Self {
            dirty: RwSignal::new(false),
            forms: StoredValue::new_local(Vec::new()),
            submitted: StoredValue::new_local(Vec::new()),
        };
        let pending = move || update.get_untracked() != Update::None;

        let focus = window_event_listener_untyped("focusin", move |ev| {
            if let Some(form) = form_of(&ev) {
                this.track(form, true);
            }
        });
        let typed = move |ev: web_sys::Event| {
            if let Some(form) = form_of(&ev) {
                this.track(form, false);
                if pending() {
                    this.recompute(app);
                }
            }
        };
        let input = window_event_listener_untyped("input", typed);
        let change = window_event_listener_untyped("change", typed);
        let submit = window_event_listener_untyped("submit", move |ev| {
            if let Some(form) = form_of(&ev) {
                this.submitted.update_value(|s| s.push(form));
            }
        });

        Effect::new(move |_| {
            match app.save.get() {
                SaveState::Saved => {
                    let done = this.submitted.try_update_value(std::mem::take).unwrap_or_default();
                    this.forms.update_value(|forms| {
                        for (form, baseline) in forms.iter_mut() {
                            let valid = form.query_selector("[aria-invalid=\"true\"]").ok().flatten().is_none();
                            if done.contains(form) && form.is_connected() && valid {
                                *baseline = Some(serialize(form));
                            }
                        }
                    });
                }
                SaveState::Failed(_) => this.submitted.update_value(Vec::clear),
                SaveState::Idle | SaveState::Saving => {}
            }
            if pending() {
                this.recompute(app);
            }
        });
        // Forms also go away without an event (navigation); while an update
        // waits, look again every second (a few string comparisons).
        Effect::new(move |_| {
            if update.get() != Update::None {
                this.recompute(app);
            }
        });
        let timer = set_interval_with_handle(
            move || {
                if pending() {
                    this.recompute(app);
                }
            },
            Duration::from_secs(1),
        )
        .ok();

        on_cleanup(move || {
            for handle in [focus, input, change, submit] {
                handle.remove();
            }
            if let Some(timer) = timer {
                timer.clear();
            }
        });
        this
    }

    fn track(self, form: web_sys::Element, focused: bool) {
        self.forms.update_value(|forms| {
            forms.retain(|(f, _)| f.is_connected());
            if !forms.iter().any(|(f, _)| *f == form) {
                let baseline = focused.then(|| serialize(&form));
                forms.push((form, baseline));
            }
        });
    }

    fn recompute(self, app: AppState) {
        let edits_pending = matches!(app.save.get_untracked(), SaveState::Saving | SaveState::Failed(_));
        let forms_changed = self.forms.try_update_value(|forms| {
            forms.retain(|(f, _)| f.is_connected());
            forms.iter().any(|(form, baseline)| baseline.as_deref() != Some(serialize(form).as_str()))
        });
        let dirty = edits_pending || forms_changed.unwrap_or(false);
        if self.dirty.get_untracked() != dirty {
            self.dirty.set(dirty);
        }
    }
}

/// The form an event happened in, if any.
fn form_of(ev: &web_sys::Event) -> Option<web_sys::Element> {
    ev.target()?.dyn_into::<web_sys::Element>().ok()?.closest("form").ok().flatten()
}

/// Every field's value (and checked state) in document order.
fn serialize(form: &web_sys::Element) -> String {
    let Ok(elements) = js_sys::Reflect::get(form, &"elements".into()) else { return String::new() };
    let mut out = String::new();
    for field in js_sys::Array::from(&elements).iter() {
        let value = js_sys::Reflect::get(&field, &"value".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let checked = js_sys::Reflect::get(&field, &"checked".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false);
        out.push_str(&value);
        out.push(if checked { '\u{1}' } else { '\u{0}' });
        out.push('\u{1e}');
    }
    out
}
