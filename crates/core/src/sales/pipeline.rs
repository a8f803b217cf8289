//! Pipelines and their stages, configured in the workspace document.
//!
//! Stored field by field (`pipelines{id → {name, position, archived,
//! stages{id → {name, probability, outcome, position, archived}}}}`), so that
//! one member renaming a stage while another reorders or adds stages merges
//! without losing either. Order is a fractional `position`: moving a stage
//! writes one number, and concurrent moves of different stages both hold.
//! Pipelines and stages are archived, never deleted, because deals and their
//! stage history point at them.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjId, ROOT};
use serde::{Deserialize, Serialize};

use crate::doc::{self, DecodeError, EncodeError};

/// Pipeline and stage ids: a UUID for ones users add, a fixed word for the
/// default pipeline (so that replicas upgrading an older workspace at the
/// same time write the same keys).
pub type PipelineId = String;
pub type StageId = String;

/// What reaching a stage means for a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Open,
    Won,
    Lost,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Won => "won",
            Outcome::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Open, Outcome::Won, Outcome::Lost].into_iter().find(|o| o.as_str() == s)
    }

    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Open => "Open",
            Outcome::Won => "Won",
            Outcome::Lost => "Lost",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    /// Default win probability in percent for deals in this stage.
    pub probability: u8,
    pub outcome: Outcome,
    pub position: f64,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub position: f64,
    pub archived: bool,
    pub stages: BTreeMap<StageId, Stage>,
}

/// Why a pipeline edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("Enter a name")]
    EmptyName,
    #[error("Enter a probability from 0 to 100")]
    BadProbability,
    #[error("There is no such stage")]
    UnknownStage,
    #[error("A pipeline needs at least one open stage")]
    LastOpenStage,
}

impl Pipeline {
    /// Stages in board order (archived ones left out unless asked for).
    pub fn ordered_stages(&self, include_archived: bool) -> Vec<(&StageId, &Stage)> {
        let mut out: Vec<_> = self.stages.iter().filter(|(_, s)| include_archived || !s.archived).collect();
        out.sort_by(|a, b| a.1.position.total_cmp(&b.1.position).then_with(|| a.0.cmp(b.0)));
        out
    }

    /// The first open stage: where new deals start.
    pub fn first_open_stage(&self) -> Option<&StageId> {
        self.ordered_stages(false).into_iter().find(|(_, s)| s.outcome == Outcome::Open).map(|(id, _)| id)
    }

    /// A position after every stage.
    pub fn end_position(&self) -> f64 {
        self.stages.values().map(|s| s.position).fold(0.0, f64::max) + 1.0
    }

    /// Adds a stage at the end of the open stages (before won and lost).
    ///
    /// # Errors
    /// [`PipelineError`] for an empty name or a probability over 100.
    pub fn add_stage(
        &mut self,
        id: StageId,
        name: &str,
        probability: u8,
        outcome: Outcome,
    ) -> Result<(), PipelineError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(PipelineError::EmptyName);
        }
        if probability > 100 {
            return Err(PipelineError::BadProbability);
        }
        let order = self.ordered_stages(true);
        let position = match (outcome, order.iter().position(|(_, s)| s.outcome != Outcome::Open)) {
            (Outcome::Open, Some(i)) => {
                let before = if i == 0 { order[i].1.position - 1.0 } else { order[i - 1].1.position };
                (before + order[i].1.position) / 2.0
            }
            _ => self.end_position(),
        };
        self.stages.insert(id, Stage { name: name.to_owned(), probability, outcome, position, archived: false });
        Ok(())
    }

    /// Moves a stage to `index` among the visible stages: only its position
    /// changes (midway between its new neighbours).
    ///
    /// # Errors
    /// [`PipelineError::UnknownStage`].
    pub fn move_stage(&mut self, id: &str, index: usize) -> Result<(), PipelineError> {
        let order: Vec<(StageId, f64)> = self
            .ordered_stages(false)
            .into_iter()
            .filter(|(s, _)| *s != id)
            .map(|(s, st)| (s.clone(), st.position))
            .collect();
        let stage = self.stages.get(id).ok_or(PipelineError::UnknownStage)?;
        let _ = stage;
        let index = index.min(order.len());
        let position = match (index.checked_sub(1).map(|i| order[i].1), order.get(index).map(|o| o.1)) {
            (None, None) => 1.0,
            (None, Some(next)) => next - 1.0,
            (Some(prev), None) => prev + 1.0,
            (Some(prev), Some(next)) => (prev + next) / 2.0,
        };
        if let Some(s) = self.stages.get_mut(id) {
            s.position = position;
        }
        Ok(())
    }

    /// Archives a stage (deals in it keep pointing at it and still show).
    ///
    /// # Errors
    /// [`PipelineError::LastOpenStage`] when it is the last open stage.
    pub fn archive_stage(&mut self, id: &str) -> Result<(), PipelineError> {
        let stage = self.stages.get(id).ok_or(PipelineError::UnknownStage)?;
        let open_left =
            self.stages.iter().filter(|(k, s)| *k != id && !s.archived && s.outcome == Outcome::Open).count();
        if stage.outcome == Outcome::Open && open_left == 0 {
            return Err(PipelineError::LastOpenStage);
        }
        if let Some(s) = self.stages.get_mut(id) {
            s.archived = true;
        }
        Ok(())
    }
}

/// The pipeline a new workspace starts with (and an older workspace
/// without pipelines reads as).
pub fn default_pipelines() -> BTreeMap<PipelineId, Pipeline> {
    let stages = [
        ("lead", "Lead", 10, Outcome::Open),
        ("qualified", "Qualified", 25, Outcome::Open),
        ("proposal", "Proposal", 50, Outcome::Open),
        ("negotiation", "Negotiation", 75, Outcome::Open),
        ("won", "Won", 100, Outcome::Won),
        ("lost", "Lost", 0, Outcome::Lost),
    ];
    let stages = stages
        .into_iter()
        .enumerate()
        .map(|(i, (id, name, probability, outcome))| {
            (
                id.to_owned(),
                Stage { name: name.into(), probability, outcome, position: i as f64 + 1.0, archived: false },
            )
        })
        .collect();
    let mut out = BTreeMap::new();
    out.insert("sales".to_owned(), Pipeline { name: "Sales".into(), position: 1.0, archived: false, stages });
    out
}

/// Reads the workspace's pipelines; a workspace written before pipelines
/// existed reads as having the default one.
pub(crate) fn read(doc: &AutoCommit) -> Result<BTreeMap<PipelineId, Pipeline>, DecodeError> {
    let Some(map) = doc::get_map(doc, &ROOT, "pipelines")? else { return Ok(default_pipelines()) };
    let mut out = BTreeMap::new();
    for pid in doc::map_keys(doc, &map) {
        let Some(p) = doc::get_map(doc, &map, &pid)? else { continue };
        let mut stages = BTreeMap::new();
        if let Some(sm) = doc::get_map(doc, &p, "stages")? {
            for sid in doc::map_keys(doc, &sm) {
                let Some(s) = doc::get_map(doc, &sm, &sid)? else { continue };
                let outcome = doc::get_str(doc, &s, "outcome")?.unwrap_or_default();
                stages.insert(
                    sid.clone(),
                    Stage {
                        name: doc::get_str(doc, &s, "name")?.unwrap_or_default(),
                        probability: doc::get_i64(doc, &s, "probability")?.unwrap_or(0).clamp(0, 100) as u8,
                        outcome: Outcome::parse(&outcome).unwrap_or_default(),
                        position: doc::get_f64(doc, &s, "position")?.unwrap_or(0.0),
                        archived: doc::get_bool(doc, &s, "archived")?,
                    },
                );
            }
        }
        out.insert(
            pid,
            Pipeline {
                name: doc::get_str(doc, &p, "name")?.unwrap_or_default(),
                position: doc::get_f64(doc, &p, "position")?.unwrap_or(0.0),
                archived: doc::get_bool(doc, &p, "archived")?,
                stages,
            },
        );
    }
    Ok(out)
}

/// Writes only what changed. Pipelines and stages are never removed from
/// the document (they are archived), so concurrent edits never lose one.
pub(crate) fn write(doc: &mut AutoCommit, pipelines: &BTreeMap<PipelineId, Pipeline>) -> Result<(), EncodeError> {
    let map = doc::ensure_map(doc, &ROOT, "pipelines")?;
    for (pid, p) in pipelines {
        let pm = doc::ensure_map(doc, &map, pid)?;
        doc::put_str(doc, &pm, "name", Some(&p.name))?;
        doc::put_f64(doc, &pm, "position", Some(p.position))?;
        doc::put_bool(doc, &pm, "archived", p.archived)?;
        let sm = doc::ensure_map(doc, &pm, "stages")?;
        for (sid, s) in &p.stages {
            write_stage(doc, &sm, sid, s)?;
        }
    }
    Ok(())
}

fn write_stage(doc: &mut AutoCommit, stages: &ObjId, id: &str, s: &Stage) -> Result<(), EncodeError> {
    let m = doc::ensure_map(doc, stages, id)?;
    doc::put_str(doc, &m, "name", Some(&s.name))?;
    doc::put_i64(doc, &m, "probability", Some(i64::from(s.probability)))?;
    doc::put_str(doc, &m, "outcome", Some(s.outcome.as_str()))?;
    doc::put_f64(doc, &m, "position", Some(s.position))?;
    doc::put_bool(doc, &m, "archived", s.archived)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sales() -> Pipeline {
        default_pipelines().remove("sales").unwrap()
    }

    fn names(p: &Pipeline) -> Vec<&str> {
        p.ordered_stages(false).into_iter().map(|(_, s)| s.name.as_str()).collect()
    }

    #[test]
    fn the_default_pipeline_runs_from_lead_to_won_and_lost() {
        let p = sales();
        assert_eq!(names(&p), ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]);
        assert_eq!(p.first_open_stage().map(String::as_str), Some("lead"));
    }

    #[test]
    fn a_new_open_stage_goes_before_won_and_lost() {
        let mut p = sales();
        p.add_stage("demo".into(), "Demo", 40, Outcome::Open).unwrap();
        assert_eq!(names(&p), ["Lead", "Qualified", "Proposal", "Negotiation", "Demo", "Won", "Lost"]);
        assert_eq!(p.add_stage("x".into(), "  ", 1, Outcome::Open), Err(PipelineError::EmptyName));
        assert_eq!(p.add_stage("x".into(), "X", 101, Outcome::Open), Err(PipelineError::BadProbability));
    }

    #[test]
    fn moving_a_stage_changes_only_its_position() {
        let mut p = sales();
        p.move_stage("proposal", 0).unwrap();
        assert_eq!(names(&p), ["Proposal", "Lead", "Qualified", "Negotiation", "Won", "Lost"]);
        p.move_stage("proposal", 9).unwrap();
        assert_eq!(names(&p), ["Lead", "Qualified", "Negotiation", "Won", "Lost", "Proposal"]);
        p.move_stage("proposal", 2).unwrap();
        assert_eq!(names(&p), ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]);
        assert_eq!(p.move_stage("nope", 1), Err(PipelineError::UnknownStage));
    }

    #[test]
    fn the_last_open_stage_cannot_be_archived() {
        let mut p = sales();
        for id in ["lead", "qualified", "proposal"] {
            p.archive_stage(id).unwrap();
        }
        assert_eq!(p.archive_stage("negotiation"), Err(PipelineError::LastOpenStage));
        p.archive_stage("lost").unwrap();
        assert_eq!(names(&p), ["Negotiation", "Won"]);
    }

    #[test]
    fn concurrent_rename_and_reorder_of_stages_both_survive_a_merge() {
        let mut a = AutoCommit::new();
        let pipelines = default_pipelines();
        write(&mut a, &pipelines).unwrap();
        let mut b = a.fork();
        let mut pa = read(&a).unwrap();
        pa.get_mut("sales").unwrap().stages.get_mut("lead").unwrap().name = "Inbound lead".into();
        write(&mut a, &pa).unwrap();
        let mut pb = read(&b).unwrap();
        pb.get_mut("sales").unwrap().move_stage("negotiation", 0).unwrap();
        pb.get_mut("sales").unwrap().add_stage("demo".into(), "Demo", 30, Outcome::Open).unwrap();
        write(&mut b, &pb).unwrap();
        a.merge(&mut b).unwrap();
        let merged = read(&a).unwrap();
        assert_eq!(
            names(&merged["sales"]),
            ["Negotiation", "Inbound lead", "Qualified", "Proposal", "Demo", "Won", "Lost"]
        );
    }

    #[test]
    fn a_workspace_without_pipelines_reads_as_the_default() {
        let doc = AutoCommit::new();
        assert_eq!(read(&doc).unwrap(), default_pipelines());
    }
}
