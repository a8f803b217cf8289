//! Sales: companies, deals moving through pipelines, the activity timeline,
//! tasks and follow-ups, and what is computed from them (board columns,
//! weighted forecast, the calendar). Each record is its own Automerge
//! document like a contact; lists, the board, the forecast and the calendar
//! read only rows, whose columns each record module names in its `columns`.

pub mod activity;
pub mod calendar;
pub mod company;
pub mod deal;
pub mod forecast;
pub mod money;
pub mod pipeline;
pub mod task;
