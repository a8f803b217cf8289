//! The app's screens and the small components they share.

pub mod consent;
pub mod contact_form;
pub mod contact_page;
pub mod contacts;
pub mod privacy;
pub mod settings;
pub mod shell;
pub mod sync_settings;
pub mod update;
pub mod widgets;
