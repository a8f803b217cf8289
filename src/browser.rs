//! The browser at the edge: clock, randomness and display formatting. Domain
//! code receives `now` and random bytes from here and never reads them itself.

use rapport_core::ids::{EntryId, EventId, RecordId};
use rapport_core::Timestamp;
use wasm_bindgen::JsValue;

pub fn now() -> Timestamp {
    Timestamp::from_millis(js_sys::Date::now() as i64)
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes);
    bytes
}

/// Fills `bytes` from the browser's CSPRNG (`crypto.getRandomValues`).
/// Ids, nonces and workspace secrets come from here, so there is no weaker
/// fallback: a browser without it cannot run Rapport safely.
pub fn fill_random(bytes: &mut [u8]) {
    if let Err(e) = getrandom::fill(bytes) {
        panic!("the browser's crypto.getRandomValues is not available: {e}");
    }
}

pub fn new_record_id() -> RecordId {
    RecordId::new(now(), random())
}

pub fn new_entry_id() -> EntryId {
    EntryId::new(now(), random())
}

pub fn new_event_id() -> EventId {
    EventId::new(now(), random())
}

/// "23 Nov 2026, 07:04" in the user's locale and time zone.
pub fn format_time(t: Timestamp) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(t.as_millis() as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    let locale = web_sys::window().and_then(|w| w.navigator().language()).unwrap_or_else(|| "en-GB".into());
    date.to_locale_string(&locale, &options).into()
}

/// The local wall-clock date and time of an instant, in the browser's time
/// zone (daylight saving included).
pub fn to_local(t: Timestamp) -> chrono::NaiveDateTime {
    let d = js_sys::Date::new(&JsValue::from_f64(t.as_millis() as f64));
    chrono::NaiveDate::from_ymd_opt(d.get_full_year() as i32, d.get_month() + 1, d.get_date())
        .and_then(|day| day.and_hms_milli_opt(d.get_hours(), d.get_minutes(), d.get_seconds(), d.get_milliseconds()))
        .unwrap_or_default()
}

/// The instant of a local wall-clock date and time (the browser resolves
/// the time zone; a time skipped by a daylight-saving change moves forward).
pub fn from_local(local: chrono::NaiveDateTime) -> Timestamp {
    use chrono::{Datelike, Timelike};
    let d = js_sys::Date::new_with_year_month_day_hr_min_sec(
        local.year() as u32,
        local.month0() as i32,
        local.day() as i32,
        local.hour() as i32,
        local.minute() as i32,
        local.second() as i32,
    );
    Timestamp::from_millis(d.get_time() as i64)
}

/// Now, as local wall-clock time.
pub fn local_now() -> chrono::NaiveDateTime {
    to_local(now())
}

/// Today's local date.
pub fn today() -> chrono::NaiveDate {
    local_now().date()
}

/// Moves focus to the first element marked `aria-invalid="true"`.
pub fn focus_first_invalid() {
    use wasm_bindgen::JsCast;
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("[aria-invalid=\"true\"]").ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// The path the app is served under, without a trailing slash ("" at the
/// root, "/crm" under a sub-path). Read once from the document's `<base>`,
/// which the build sets to the public URL, so one build works wherever its
/// `<base>` says.
pub fn base_path() -> &'static str {
    thread_local! {
        static BASE: &'static str = {
            let path = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.base_uri().ok().flatten())
                .and_then(|uri| web_sys::Url::new(&uri).ok())
                .map(|u| u.pathname())
                .unwrap_or_default();
            Box::leak(path.trim_end_matches('/').to_owned().into_boxed_str())
        };
    }
    BASE.with(|b| *b)
}

/// An in-app link target under [`base_path`].
pub fn href(path: &str) -> String {
    format!("{}{path}", base_path())
}

/// Whether the browser believes it has a network (`navigator.onLine`):
/// `false` means certainly offline; `true` only that it may reach a server.
pub fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// After a route change, moves focus to the new page's start, as accessible
/// single-page apps do: the first field of a form page (`form_page`), else
/// the page's first heading (made focusable with `tabindex="-1"`). Returns
/// `false` when the page has not rendered either yet, so the caller can try
/// again on a later frame.
pub fn focus_page_start(form_page: bool) -> bool {
    use wasm_bindgen::JsCast;
    let Some(main) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("main")) else {
        return false;
    };
    let field = "form.card input:not([type=hidden]):not([disabled]), form.card select:not([disabled]), \
                 form.card textarea:not([disabled])";
    let selector = if form_page { field } else { "h1" };
    let Some(el) = main.query_selector(selector).ok().flatten().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return false;
    };
    if !form_page && !el.has_attribute("tabindex") {
        let _ = el.set_attribute("tabindex", "-1");
    }
    el.focus().is_ok()
}
