//! From the browser's errors to [`StorageError`].
//!
//! IndexedDB reports a failure in one of three places: the request
//! (`request.error`), the transaction (`transaction.error`, set when it
//! aborts, e.g. with `QuotaExceededError` at commit time), or as an exception
//! thrown by the call that started it. Every path here looks at the
//! transaction's error first, because a request failure often surfaces in
//! `indexed_db_futures` only as "the transaction was aborted".

use indexed_db_futures::error::{Error as IdbError, OpenDbError};
use rapport_core::storage::StorageError;
use wasm_bindgen::{JsCast, JsValue};

const QUOTA_EXCEEDED: &str = "QuotaExceededError";

/// Whether a failure happened while reading or while writing: it picks
/// between [`StorageError::ReadFailed`] and [`StorageError::WriteFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
}

impl Op {
    pub(crate) fn fail(self, message: String) -> StorageError {
        match self {
            Op::Read => StorageError::ReadFailed(message),
            Op::Write => StorageError::WriteFailed(message),
        }
    }
}

/// `"{name}: {message}"` of a `DOMException`, e.g.
/// `"ConstraintError: Key already exists in the object store."`.
fn describe_dom(e: &web_sys::DomException) -> String {
    let (name, message) = (e.name(), e.message());
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// The `DOMException` inside a crate error, when there is one.
fn dom_of(err: &IdbError) -> Option<web_sys::DomException> {
    match err {
        IdbError::DomException(d) => Some(d.clone().into()),
        IdbError::Unknown(js) => js.as_ref().dyn_ref::<web_sys::DomException>().cloned(),
        IdbError::Serialisation(_) | IdbError::MissingData(_) => None,
    }
}

fn is_quota(e: &web_sys::DomException) -> bool {
    e.name() == QUOTA_EXCEEDED
}

/// Maps a failed request or commit. `tx` is the transaction it ran in, whose
/// own error (if it aborted) is the most precise explanation.
pub(crate) fn map_err(err: &IdbError, tx: Option<&web_sys::IdbTransaction>, op: Op) -> StorageError {
    let tx_error = tx.and_then(web_sys::IdbTransaction::error);
    let request_error = dom_of(err);
    if tx_error.iter().chain(request_error.iter()).any(is_quota) {
        return StorageError::QuotaExceeded;
    }
    let message = match (tx_error, request_error) {
        (Some(e), _) | (None, Some(e)) => describe_dom(&e),
        (None, None) => err.to_string(),
    };
    op.fail(message)
}

/// A readable message for any thrown JS value.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
        return describe_dom(e);
    }
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// Maps a failure to open the database: always [`StorageError::Unavailable`],
/// with words for the cases a user can do something about.
pub(crate) fn map_open(err: &OpenDbError) -> StorageError {
    let message = match err {
        OpenDbError::UnsupportedEnvironment | OpenDbError::NullFactory => {
            "this browser does not offer IndexedDB here (a private window or a locked-down setting can switch it off)"
                .to_owned()
        }
        OpenDbError::VersionZero => "the database version must be at least 1".to_owned(),
        OpenDbError::Base(base) => match dom_of(base) {
            Some(e) if e.name() == "VersionError" => format!(
                "it was last opened by a newer version of Rapport; reload the page to update the app ({})",
                describe_dom(&e)
            ),
            Some(e) if is_quota(&e) => {
                format!("the browser's storage is full; free some space ({})", describe_dom(&e))
            }
            Some(e) => describe_dom(&e),
            None => base.to_string(),
        },
    };
    StorageError::Unavailable(message)
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn dom(name: &str, message: &str) -> IdbError {
        let e = web_sys::DomException::new_with_message_and_name(message, name)
            .expect("the DOMException constructor accepts any name");
        IdbError::from(e)
    }

    #[test]
    fn a_quota_exceeded_request_error_becomes_quota_exceeded() {
        let err = dom("QuotaExceededError", "The quota has been exceeded.");
        assert_eq!(map_err(&err, None, Op::Write), StorageError::QuotaExceeded);
        assert_eq!(map_err(&err, None, Op::Read), StorageError::QuotaExceeded);
    }

    #[test]
    fn other_dom_exceptions_keep_the_browsers_name_and_message() {
        assert_eq!(
            map_err(&dom("ConstraintError", "Key already exists."), None, Op::Write),
            StorageError::WriteFailed("ConstraintError: Key already exists.".into())
        );
        assert_eq!(
            map_err(&dom("DataError", "No key."), None, Op::Read),
            StorageError::ReadFailed("DataError: No key.".into())
        );
    }

    #[test]
    fn a_version_error_on_open_asks_to_reload() {
        let err = OpenDbError::Base(dom("VersionError", "The requested version is too low."));
        let mapped = map_open(&err);
        assert!(
            matches!(&mapped, StorageError::Unavailable(m) if m.contains("newer version of Rapport")),
            "{mapped:?}"
        );
    }
}
