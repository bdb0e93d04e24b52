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
    /// Metric `key` of this run: a swept hyperparameter (`optimizer.mu`), a metric derived from
    /// the run's configuration and outcome ([`TARGET_GAP`]) or a final metric.
    pub fn value(&self, key: &str) -> Option<f64> {
        if let Some(v) = self.run.sweep.get(key) {
            return v.as_f64();
        }
        if key == TARGET_GAP {
            return self.target_gap();
        }
        self.outcome.metric(key)
    }

    /// `|s − S*|`: how far the final weight sparsity `s` stands from the topology's target `S*`
    /// (`None` without a topology that names one). A method that overshoots its target is as
    /// far from it as one that stops short, so "reaches its target" is judged on this, never on
    /// the sparsity itself (SPEC §1.2, semi-pruning walks towards S*).
    fn target_gap(&self) -> Option<f64> {
        let target = self
            .run
            .config
            .method
            .topology
            .as_ref()?
            .params
            .get("sparsity")?
            .as_f64()?;
        Some((self.outcome.metric("weight_sparsity")? - target).abs())
    }
}

/// A derived run metric: the distance of the final weight sparsity from the topology's target.
pub const TARGET_GAP: &str = "target_gap";

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

/// Stored results built by hand, for tests of what reads them.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::experiment::RunConfig;
    use crate::resolve::{ComponentConfig, MethodConfig};
    use serde_json::json;

    /// A finished run of arm `arm` with seed `seed`, an LpSGD-trained LeNet-5 (under topology
    /// `topology`), whose final record is `outcome` merged over a minimal finished one.
    pub(crate) fn finished(
        arm: &str,
        seed: u64,
        topology: Option<(&str, Value)>,
        outcome: Value,
    ) -> RunResult {
        let component = |name: &str, params: Value| ComponentConfig {
            name: name.into(),
            params,
            non_default: json!({}),
        };
        let mut record = json!({"status": "finished", "epochs": 1, "last": EpochRecord::default(),
            "train_seconds": 0.0, "wall_seconds": 0.0, "samples_per_sec": 0.0});
        if let (Some(base), Value::Object(extra)) = (record.as_object_mut(), outcome) {
            base.extend(extra);
        }
        RunResult {
            run: PlannedRun {
                id: format!("{arm}-{seed}"),
                arm: arm.into(),
                label: arm.into(),
                sweep: BTreeMap::new(),
                config: RunConfig {
                    data: Default::default(),
                    train: Default::default(),
                    method: MethodConfig {
                        model: component("lenet5", json!({})),
                        optimizer: component("lpsgd", json!({})),
                        regularizer: None,
                        topology: topology.map(|(name, params)| component(name, params)),
                        losses: Vec::new(),
                    },
                    seed,
                },
            },
            outcome: serde_json::from_value(record).expect("a final record"),
            epochs: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A finished semi-pruning run with target `target` that ended at weight sparsity `s`.
    fn semi_pruned(target: Option<f64>, s: f64) -> RunResult {
        let last = EpochRecord {
            weight_sparsity: s,
            ..EpochRecord::default()
        };
        let topology = target.map(|t| ("semi-prune", json!({ "sparsity": t })));
        fixture::finished("semi", 0, topology, json!({ "last": last }))
    }

    /// Overshooting the target counts as far as stopping short; a run without a target has no
    /// gap.
    #[test]
    fn target_gap_is_the_distance_to_the_topology_target() {
        let gap = |target, s| semi_pruned(target, s).value(TARGET_GAP);
        let close = |a: Option<f64>, b: f64| (a.expect("a gap") - b).abs() < 1e-12;
        assert!(close(gap(Some(0.5), 0.94), 0.44));
        assert!(close(gap(Some(0.9), 0.86), 0.04));
        assert!(close(gap(Some(0.8), 0.8), 0.0));
        assert_eq!(gap(None, 0.9), None);
        assert_eq!(
            semi_pruned(Some(0.5), 0.7).value("weight_sparsity"),
            Some(0.7)
        );
    }
}
