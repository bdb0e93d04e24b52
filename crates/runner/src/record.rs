//! What a run writes: per-epoch metrics, final metrics, and the catalogue of metric names that
//! figures and tables may use.

use serde::{Deserialize, Serialize};
use sparselab_metrics::magnitude::MagnitudeHistogram;
use std::collections::BTreeMap;

/// Metrics at the end of one epoch (SPEC.md §3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Optimiser steps so far.
    pub step: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches (task loss only).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches (as they were seen, with augmentation).
    pub train_accuracy: f64,
    /// Validation loss (absent without a validation split).
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Test loss.
    pub test_loss: f64,
    /// Test top-1 accuracy.
    pub test_accuracy: f64,
    /// Test top-5 accuracy (datasets with ≥ 100 classes).
    pub test_top5: Option<f64>,
    /// Unstructured sparsity of weight tensors.
    pub weight_sparsity: f64,
    /// Unstructured sparsity of all trainable parameters.
    pub param_sparsity: f64,
    /// Total ÷ non-zero parameters.
    pub compression: Option<f64>,
    /// Dense ÷ non-zero multiply-accumulates (linear and conv).
    pub speedup: Option<f64>,
    /// Network Hoyer sparsity.
    pub hoyer: f64,
    /// Sparsity of each weight tensor, by path.
    pub layer_sparsity: BTreeMap<String, f64>,
    /// Fraction of all-zero input groups (SPEC §1.4; absent in records older than the metric).
    pub group_sparsity: Option<f64>,
    /// Fraction of all-zero input groups weighted by group size.
    pub group_sparsity_weighted: Option<f64>,
    /// Group sparsity of each weight tensor, by path.
    #[serde(default)]
    pub layer_group_sparsity: BTreeMap<String, f64>,
    /// Fraction of all-zero conv kernels `W[o, i, :, :]` (absent without conv weights, and in
    /// records older than the metric).
    #[serde(default)]
    pub kernel_sparsity: Option<f64>,
    /// Fraction of all-zero conv output filters `W[o, :, :, :]`.
    #[serde(default)]
    pub filter_sparsity: Option<f64>,
    /// Groups whose zero/non-zero state changed since the previous epoch (epoch 1: since
    /// initialisation).
    pub churn: Option<usize>,
    /// For data with a known sparse structure: input features whose first-layer group state
    /// (non-zero = used) differs from the truth.
    pub support_error: Option<usize>,
    /// `λ·ψ(w)` summed over regularised tensors (absent without a regularizer).
    pub penalty: Option<f64>,
    /// Mean value of each loss term over the epoch's steps where it was due, by term name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub loss_terms: BTreeMap<String, f64>,
    /// Hoyer sparsity of each weight tensor (mean over its units), by path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layer_hoyer: BTreeMap<String, f64>,
    /// Mean inter-layer CKA of each stage with ≥ 2 blocks, by stage (`"stage 1"`, …), on a fixed
    /// validation subset (SPEC §1.3, §3; see `similarity`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_cka: BTreeMap<String, f64>,
    /// Mean of `stage_cka` over stages (absent for models without a stage of ≥ 2 blocks).
    #[serde(default)]
    pub cka: Option<f64>,
    /// `(step, sparsity of the masked tensors)` after every topology update in this epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparsity_trace: Vec<(usize, f64)>,
    /// Training wall time of the epoch (seconds, evaluation excluded).
    pub epoch_seconds: f64,
    /// Training samples per second in this epoch.
    pub samples_per_sec: f64,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// All epochs ran.
    Finished,
    /// The loss became NaN or infinite; the run stopped.
    Diverged,
}

/// The outcome of a run (written last: its presence marks the run done).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalRecord {
    /// How the run ended.
    pub status: Status,
    /// Epochs completed.
    pub epochs: usize,
    /// Metrics of the last completed epoch (absent if the run diverged in its first epoch).
    pub last: Option<EpochRecord>,
    /// Epoch with the best validation accuracy (model selection on validation, never test).
    pub best_val_epoch: Option<usize>,
    /// Test accuracy at that epoch.
    pub test_accuracy_at_best_val: Option<f64>,
    /// First epoch after which the group structure never changed again (`None`: it still
    /// changed in the last epoch, or the run predates the metric).
    #[serde(default)]
    pub identification_epoch: Option<usize>,
    /// Training wall time (seconds, evaluation excluded).
    pub train_seconds: f64,
    /// Whole-run wall time including evaluation (seconds).
    pub wall_seconds: f64,
    /// Training samples per second over the run.
    pub samples_per_sec: f64,
    /// What went wrong, for a diverged run.
    pub note: Option<String>,
    /// For optimisers that hold weights on unit Lp spheres: each constrained layer's measured
    /// and predicted Hoyer sparsity at the end of training (SPEC §1.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spheres: Vec<SphereLayer>,
    /// Magnitudes of all weight-tensor entries at the end of training (log bins, exact zeros
    /// apart; absent in runs older than the metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_histogram: Option<MagnitudeHistogram>,
    /// How many times the run was resumed from a checkpoint (its results are those of an
    /// uninterrupted run; only its timings tell).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed: usize,
    /// Measured inference speedup of the trained network's weight layers at batch 1, on the
    /// CPU that trained it ([`crate::inference_speed`]; absent in runs older than the metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_speedup_b1: Option<f64>,
    /// The same at batch 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_speedup_b128: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One sphere-constrained layer at the end of training: measured Hoyer sparsity and the gamma
/// hypothesis' predictions (SPEC §1.2; see `sparselab_metrics::gamma_hoyer`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SphereLayer {
    /// Parameter path.
    pub layer: String,
    /// The sphere's exponent p.
    pub p: f64,
    /// Weights per unit `n`.
    pub fan_in: usize,
    /// Measured Hoyer sparsity (mean over units).
    pub hoyer: f64,
    /// Closed form with Gaussian gradients (`k = ½`, `a = 1/(2(p−1))`), clipped at 1.
    pub closed_form: f64,
    /// Monte Carlo estimate with the same `k`, `a` and `n`.
    pub monte_carlo: f64,
    /// Gamma shape `k` fitted by maximum likelihood to the layer's dual magnitudes
    /// `|v| = |w|^{p−1}` (non-zero entries).
    pub fitted_k: Option<f64>,
    /// Monte Carlo estimate with the fitted `k` and `a = 1/(p−1)`.
    pub fitted: Option<f64>,
}

impl FinalRecord {
    /// The value of metric `key` for figures and tables: a field of the last epoch or of the
    /// final record itself.
    pub fn metric(&self, key: &str) -> Option<f64> {
        if key == SMALL_WEIGHTS {
            return self.weight_histogram.as_ref()?.share_below(-2.0);
        }
        let own = serde_json::to_value(self).ok()?;
        let last = serde_json::to_value(self.last.as_ref()?).ok()?;
        own.get(key)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| last.get(key).and_then(serde_json::Value::as_f64))
    }
}

/// `v` (stored records as JSON) without what differs between two trainings of one run, which
/// otherwise have the same bits: timings, measured inference speedups and how often the run was
/// resumed.
pub fn without_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| {
                !k.ends_with("seconds")
                    && k != "samples_per_sec"
                    && k != "resumed"
                    && !k.starts_with("measured_speedup")
            });
            map.values_mut().for_each(without_timings);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_timings),
        _ => {}
    }
}

/// A final metric derived from `weight_histogram`: the share of non-zero weights with
/// `|w| < 0.01` (how CKA-SR's Figs. 1-3 claim weights concentrate near 0, as one number).
pub const SMALL_WEIGHTS: &str = "small_weights";

/// The identification epoch of a run (SPEC §1.4) derived from its per-epoch records: the first
/// epoch after which the group structure never changed, `None` if it still changed at the end or
/// no group was ever zero. Derived on load too, so stored results follow the current rule.
pub fn identification_from(epochs: &[EpochRecord]) -> Option<usize> {
    let churn: Vec<usize> = epochs.iter().map(|e| e.churn.unwrap_or(0)).collect();
    let zero: Vec<f64> = epochs
        .iter()
        .map(|e| e.group_sparsity.unwrap_or(0.0))
        .collect();
    sparselab_metrics::group::identification_epoch(&churn, &zero)
}

/// How far (in sparsity) an epoch may be from the run's final sparsity and still be selected
/// on validation: half a point.
pub const SELECTION_TOLERANCE: f64 = 0.005;

/// The epoch model selection picks (SPEC §3, the validation split): among the epochs whose
/// weight sparsity is within [`SELECTION_TOLERANCE`] of the last epoch's (so a pruned run is
/// never judged by an epoch before pruning finished), the one of best validation accuracy, the
/// earliest on ties; `None` without validation. Derived on load too, so stored results follow
/// the current rule.
pub fn best_validation(epochs: &[EpochRecord]) -> Option<&EpochRecord> {
    let final_sparsity = epochs.last()?.weight_sparsity;
    epochs
        .iter()
        .filter(|e| (e.weight_sparsity - final_sparsity).abs() <= SELECTION_TOLERANCE)
        .filter_map(|e| e.val_accuracy.map(|a| (a, e)))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.epoch.cmp(&a.1.epoch)))
        .map(|(_, e)| e)
}

impl EpochRecord {
    /// The value of metric `key` (a field of this record).
    pub fn metric(&self, key: &str) -> Option<f64> {
        serde_json::to_value(self).ok()?.get(key)?.as_f64()
    }
}

/// A metric that figures and tables can show.
#[derive(Clone, Copy, Debug)]
pub struct MetricInfo {
    /// Key in the records.
    pub key: &'static str,
    /// Axis / column label, with unit.
    pub label: &'static str,
    /// Display multiplier (100 for fractions shown in %).
    pub scale: f64,
}

/// Every metric figures and tables may name.
pub const METRICS: &[MetricInfo] = &[
    MetricInfo {
        key: "epoch",
        label: "epoch",
        scale: 1.0,
    },
    MetricInfo {
        key: "lr",
        label: "learning rate",
        scale: 1.0,
    },
    MetricInfo {
        key: "train_loss",
        label: "training loss (cross-entropy)",
        scale: 1.0,
    },
    MetricInfo {
        key: "train_accuracy",
        label: "training accuracy (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "val_loss",
        label: "validation loss (cross-entropy)",
        scale: 1.0,
    },
    MetricInfo {
        key: "val_accuracy",
        label: "validation accuracy (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "test_loss",
        label: "test loss (cross-entropy)",
        scale: 1.0,
    },
    MetricInfo {
        key: "test_accuracy",
        label: "test accuracy (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "test_top5",
        label: "test top-5 accuracy (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "weight_sparsity",
        label: "weight sparsity (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "param_sparsity",
        label: "parameter sparsity (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "compression",
        label: "compression ratio (×, total / non-zero params)",
        scale: 1.0,
    },
    MetricInfo {
        key: "speedup",
        label: "theoretical speedup (×, dense / non-zero FLOPs)",
        scale: 1.0,
    },
    MetricInfo {
        key: "measured_speedup_b1",
        label: "measured inference speedup (×, batch 1, weight layers, this CPU)",
        scale: 1.0,
    },
    MetricInfo {
        key: "measured_speedup_b128",
        label: "measured inference speedup (×, batch 128, weight layers, this CPU)",
        scale: 1.0,
    },
    MetricInfo {
        key: crate::aggregate::TARGET_GAP,
        label: "distance from the target sparsity S* (points)",
        scale: 100.0,
    },
    MetricInfo {
        key: "group_sparsity",
        label: "group sparsity (%, zero input groups)",
        scale: 100.0,
    },
    MetricInfo {
        key: "group_sparsity_weighted",
        label: "group sparsity (%, weighted by group size)",
        scale: 100.0,
    },
    MetricInfo {
        key: "kernel_sparsity",
        label: "kernel sparsity (%, zero conv kernels)",
        scale: 100.0,
    },
    MetricInfo {
        key: "filter_sparsity",
        label: "filter sparsity (%, zero conv filters)",
        scale: 100.0,
    },
    MetricInfo {
        key: "churn",
        label: "structure churn (groups changed since previous epoch)",
        scale: 1.0,
    },
    MetricInfo {
        key: "support_error",
        label: "support recovery error (input features wrongly kept or removed)",
        scale: 1.0,
    },
    MetricInfo {
        key: "identification_epoch",
        label: "identification epoch",
        scale: 1.0,
    },
    MetricInfo {
        key: "hoyer",
        label: "Hoyer sparsity",
        scale: 1.0,
    },
    MetricInfo {
        key: "cka",
        label: "mean inter-layer CKA (within stages)",
        scale: 1.0,
    },
    MetricInfo {
        key: SMALL_WEIGHTS,
        label: "non-zero weights below 0.01 in magnitude (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "penalty",
        label: "penalty λψ(w)",
        scale: 1.0,
    },
    MetricInfo {
        key: "epoch_seconds",
        label: "epoch time (s)",
        scale: 1.0,
    },
    MetricInfo {
        key: "samples_per_sec",
        label: "throughput (samples/s)",
        scale: 1.0,
    },
    MetricInfo {
        key: "best_val_epoch",
        label: "best validation epoch",
        scale: 1.0,
    },
    MetricInfo {
        key: "test_accuracy_at_best_val",
        label: "test accuracy at best validation epoch (%)",
        scale: 100.0,
    },
    MetricInfo {
        key: "train_seconds",
        label: "training time (s)",
        scale: 1.0,
    },
];

/// The catalogue entry of `key`.
pub fn metric_info(key: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(churn: usize, group_sparsity: f64) -> EpochRecord {
        EpochRecord {
            churn: Some(churn),
            group_sparsity: Some(group_sparsity),
            ..EpochRecord::default()
        }
    }

    /// A dense run (no group ever zero) identifies nothing; it was reported as epoch 0.
    #[test]
    fn identification_needs_a_zero_group() {
        assert_eq!(identification_from(&[epoch(0, 0.0), epoch(0, 0.0)]), None);
        assert_eq!(
            identification_from(&[epoch(3, 0.2), epoch(0, 0.3), epoch(0, 0.3)]),
            Some(1)
        );
        assert_eq!(identification_from(&[]), None);
    }

    #[test]
    fn final_metric_reads_own_fields_then_last_epoch() {
        let last = EpochRecord {
            test_accuracy: 0.9,
            compression: Some(10.0),
            ..EpochRecord::default()
        };
        let f = FinalRecord {
            status: Status::Finished,
            epochs: 3,
            last: Some(last),
            best_val_epoch: Some(2),
            test_accuracy_at_best_val: Some(0.8),
            identification_epoch: Some(2),
            train_seconds: 1.0,
            wall_seconds: 2.0,
            samples_per_sec: 5.0,
            note: None,
            spheres: Vec::new(),
            weight_histogram: None,
            resumed: 0,
            measured_speedup_b1: None,
            measured_speedup_b128: None,
        };
        assert_eq!(f.metric("test_accuracy"), Some(0.9));
        assert_eq!(f.metric("compression"), Some(10.0));
        assert_eq!(f.metric("best_val_epoch"), Some(2.0));
        assert_eq!(f.metric("samples_per_sec"), Some(5.0));
        assert_eq!(f.metric("nonsense"), None);
        // Derived from the weight histogram: half of the non-zero weights lie below 0.01.
        assert_eq!(f.metric(SMALL_WEIGHTS), None);
        let with_histogram = FinalRecord {
            weight_histogram: Some(MagnitudeHistogram::of([&[1e-3f32, 0.5, 0.0][..]])),
            ..f
        };
        assert_eq!(with_histogram.metric(SMALL_WEIGHTS), Some(0.5));
    }

    #[test]
    fn every_catalogued_metric_exists_in_the_records() {
        let e = serde_json::to_value(EpochRecord::default()).unwrap();
        let f = serde_json::to_value(FinalRecord {
            status: Status::Finished,
            epochs: 0,
            last: None,
            best_val_epoch: None,
            test_accuracy_at_best_val: None,
            identification_epoch: None,
            train_seconds: 0.0,
            wall_seconds: 0.0,
            samples_per_sec: 0.0,
            note: None,
            spheres: Vec::new(),
            weight_histogram: None,
            resumed: 0,
            measured_speedup_b1: Some(1.0),
            measured_speedup_b128: Some(1.0),
        })
        .unwrap();
        // The derived metrics come from the histogram or the run's configuration.
        let derived = [SMALL_WEIGHTS, crate::aggregate::TARGET_GAP];
        for m in METRICS.iter().filter(|m| !derived.contains(&m.key)) {
            assert!(
                e.get(m.key).is_some() || f.get(m.key).is_some(),
                "{}",
                m.key
            );
        }
    }

    /// Labels head markdown table columns, where a `|` would split the column.
    #[test]
    fn every_label_fits_a_markdown_cell() {
        for m in METRICS {
            assert!(!m.label.contains('|'), "{}: {}", m.key, m.label);
        }
    }

    /// Model selection never picks an epoch before pruning finished: the best validation
    /// accuracy among epochs within half a point of the final sparsity, the earliest on ties.
    #[test]
    fn best_validation_waits_for_the_final_sparsity() {
        let epoch = |epoch, sparsity, val: f64, test| EpochRecord {
            epoch,
            weight_sparsity: sparsity,
            val_accuracy: Some(val),
            test_accuracy: test,
            ..EpochRecord::default()
        };
        let epochs = vec![
            epoch(1, 0.0, 0.95, 0.94),
            epoch(2, 0.5, 0.90, 0.89),
            epoch(3, 0.898, 0.85, 0.84),
            epoch(4, 0.9, 0.86, 0.85),
            epoch(5, 0.9, 0.86, 0.87),
        ];
        let best = best_validation(&epochs).expect("validated epochs");
        assert_eq!((best.epoch, best.test_accuracy), (4, 0.85));
        assert!(best_validation(&[]).is_none());
    }
}
