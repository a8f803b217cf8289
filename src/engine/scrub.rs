//! The engine's side of erasure for records that stay: removing the erased
//! person from the deals, activities and tasks that point at them.
//!
//! Scrubbing is an ordinary edit that syncs like any other. What it removes
//! is a record id, which carries no personal data once the person's own
//! document is erased everywhere (the workspace's tombstone keeps the same
//! id), so no epoch rewrite is needed for it.

use rapport_core::ids::RecordId;
use rapport_core::privacy::erasure::ErasurePlan;
use rapport_core::privacy::Referencing;
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::sales::{activity::Activity, deal::Deal, task::Task};

use super::Engine;

impl Engine {
    /// Scrubs every record the plan keeps. Returns the new rows of the
    /// records changed and, for each one that could not be scrubbed, why.
    pub async fn scrub(&self, plan: &ErasurePlan) -> (Vec<Row>, Vec<(RecordId, String)>) {
        let subject = plan.subject.id;
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for s in &plan.scrub {
            let id = s.record.id;
            let result = match s.record.kind {
                RecordKind::Deal => self.scrub_one::<Deal>(id, subject).await,
                RecordKind::Activity => self.scrub_one::<Activity>(id, subject).await,
                RecordKind::Task => self.scrub_one::<Task>(id, subject).await,
                other => Err(format!("records of kind {other} cannot hold references yet")),
            };
            match result {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(e) => failed.push((id, e)),
            }
        }
        (rows, failed)
    }

    async fn scrub_one<R: Record + Referencing>(&self, id: RecordId, subject: RecordId) -> Result<Option<Row>, String> {
        let mut record = self.open::<R>(id).await.map_err(|e| e.to_string())?;
        if record.scrub(subject).is_empty() {
            return Ok(None);
        }
        self.save(&record).await.map(Some).map_err(|e| e.to_string())
    }
}
