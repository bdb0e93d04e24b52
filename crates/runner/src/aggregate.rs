//! Results grouped for figures and tables: one group per arm and sweep point, its runs being
//! the seeds.

use crate::experiment::PlannedRun;
use crate::record::{EpochRecord, FinalRecord, Status};
use serde_json::Value;
use sparselab_metrics::stats::{Summary, summarize};
use std::collections::BTreeMap;

/// A run with its outcome and per-epoch records.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// What was planned.
    pub run: PlannedRun,
    /// How it ended.
    pub outcome: FinalRecord,
    /// Per-epoch metrics.
    pub epochs: Vec<EpochRecord>,
}

impl RunResult {
    /// Metric `key` of this run: a swept hyperparameter (`optimizer.mu`) or a final metric.
    pub fn value(&self, key: &str) -> Option<f64> {
        match self.run.sweep.get(key) {
            Some(v) => v.as_f64(),
            None => self.outcome.metric(key),
        }
    }
}

/// The seeds of one arm at one sweep point.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// Arm name.
    pub arm: &'a str,
    /// Arm label.
    pub label: &'a str,
    /// Sweep point.
    pub sweep: &'a BTreeMap<String, Value>,
    /// Its runs (one per seed).
    pub runs: Vec<&'a RunResult>,
}

impl Group<'_> {
    /// `label (key=value, ...)`.
    pub fn display(&self) -> String {
        let point = self.runs[0].run.sweep_label();
        if point.is_empty() {
            self.label.to_string()
        } else {
            format!("{} ({point})", self.label)
        }
    }

    /// Values of `key` over the finished runs that have it.
    pub fn values(&self, key: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.outcome.status == Status::Finished)
            .filter_map(|r| r.value(key))
            .collect()
    }

    /// Summary of `key` over seeds.
    pub fn summary(&self, key: &str) -> Option<Summary> {
        summarize(&self.values(key))
    }

    /// Whether this group is at the sweep point of `other`: every key this group sweeps takes
    /// the value `other` has (so an arm that sweeps fewer keys, such as a baseline without the
    /// β sweep, matches each of `other`'s points at its shared keys).
    pub fn at_point_of(&self, other: &Group<'_>) -> bool {
        self.sweep
            .iter()
            .all(|(k, v)| other.sweep.get(k) == Some(v))
    }

    /// Runs that diverged.
    pub fn diverged(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.outcome.status == Status::Diverged)
            .count()
    }

    /// Per-epoch summaries of `key`: `(epoch, summary)` for epochs every finished run reached.
    pub fn epoch_summaries(&self, key: &str) -> Vec<(usize, Summary)> {
        let finished: Vec<&&RunResult> = self
            .runs
            .iter()
            .filter(|r| r.outcome.status == Status::Finished)
            .collect();
        let epochs = finished.iter().map(|r| r.epochs.len()).min().unwrap_or(0);
        (0..epochs)
            .filter_map(|e| {
                let xs: Vec<f64> = finished
                    .iter()
                    .filter_map(|r| r.epochs[e].metric(key))
                    .collect();
                (xs.len() == finished.len()).then(|| summarize(&xs).map(|s| (e + 1, s)))?
            })
            .collect()
    }
}

/// Groups `results` by arm and sweep point, in plan order.
pub fn groups(results: &[RunResult]) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for r in results {
        match out
            .iter_mut()
            .find(|g| g.arm == r.run.arm && *g.sweep == r.run.sweep)
        {
            Some(g) => g.runs.push(r),
            None => out.push(Group {
                arm: &r.run.arm,
                label: &r.run.label,
                sweep: &r.run.sweep,
                runs: vec![r],
            }),
        }
    }
    out
}
