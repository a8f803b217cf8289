//! The Storage API (`navigator.storage`): how much the origin uses, how much
//! it may use, and whether the browser may evict it under pressure.
//!
//! `navigator.storage` exists only in secure contexts (HTTPS or localhost),
//! so every lookup here is dynamic and its absence is an answer, not an error.

use js_sys::{Function, Promise, Reflect};
use rapport_core::storage::StorageError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::js_message;

/// `navigator.storage`, in a window or a worker, if this context has it.
fn storage_manager() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    let storage = Reflect::get(&navigator, &JsValue::from_str("storage")).ok()?;
    (!storage.is_undefined() && !storage.is_null()).then_some(storage)
}

/// Calls `navigator.storage[method]()` and awaits its promise; `Ok(None)`
/// when the method does not exist here.
async fn call(method: &str) -> Result<Option<JsValue>, StorageError> {
    let Some(manager) = storage_manager() else {
        return Ok(None);
    };
    let Some(function) =
        Reflect::get(&manager, &JsValue::from_str(method)).ok().and_then(|f| f.dyn_into::<Function>().ok())
    else {
        return Ok(None);
    };
    let fail =
        |e: JsValue| StorageError::ReadFailed(format!("navigator.storage.{method}() failed: {}", js_message(&e)));
    let promise = function.call0(&manager).map_err(fail)?;
    let promise = promise
        .dyn_into::<Promise>()
        .map_err(|_| StorageError::ReadFailed(format!("navigator.storage.{method}() did not return a promise")))?;
    JsFuture::from(promise).await.map(Some).map_err(fail)
}

fn number_field(object: &JsValue, field: &str) -> Option<u64> {
    let value = Reflect::get(object, &JsValue::from_str(field)).ok()?.as_f64()?;
    // Byte counts are whole, non-negative numbers far below 2^53.
    (value.is_finite() && value >= 0.0).then_some(value as u64)
}

pub(crate) async fn estimate() -> Result<Option<(u64, u64)>, StorageError> {
    let Some(estimate) = call("estimate").await? else {
        return Ok(None);
    };
    Ok(number_field(&estimate, "usage").zip(number_field(&estimate, "quota")))
}

pub(crate) async fn request_persistence() -> Result<bool, StorageError> {
    Ok(call("persist").await?.and_then(|granted| granted.as_bool()).unwrap_or(false))
}
