//! The app's screens and the small components they share.

pub mod audit_log;
pub mod calendar;
pub mod companies;
pub mod company_form;
pub mod company_page;
pub mod conflicts;
pub mod consent;
pub mod contact_form;
pub mod contact_page;
pub mod contacts;
pub mod deal_form;
pub mod deal_list;
pub mod deal_page;
pub mod deals;
pub mod follow_ups;
pub mod forecast;
pub mod join;
pub mod pipeline_settings;
pub mod privacy;
pub mod reminders;
pub mod retention;
pub mod settings;
pub mod shell;
pub mod sync_settings;
pub mod task_form;
pub mod tasks;
pub mod timeline;
pub mod update;
pub mod widgets;

use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;

/// The app path of a record's page (before [`crate::browser::href`] adds the
/// base path), for the kinds that have one: activities live on timelines.
pub fn record_path(kind: RecordKind, id: RecordId) -> Option<String> {
    match kind {
        RecordKind::Contact => Some(format!("/contacts/{id}")),
        RecordKind::Company => Some(format!("/companies/{id}")),
        RecordKind::Deal => Some(format!("/deals/{id}")),
        RecordKind::Task => Some(format!("/tasks/{id}/edit")),
        _ => None,
    }
}

/// The `href` of a record's page, for the kinds that have one.
pub fn record_href(kind: RecordKind, id: RecordId) -> Option<String> {
    record_path(kind, id).map(|path| crate::browser::href(&path))
}
