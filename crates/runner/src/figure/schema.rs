//! The `[[figures]]` entries of an experiment file: what each kind draws, validated against the
//! ablation's arms, sweep keys and the metrics runs record.

use crate::record::metric_info;
use serde::Deserialize;
use serde_json::Value;
use sparselab_core::ConfigError;
use std::collections::BTreeMap;

/// A figure as the experiment file describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FigureSpec {
    /// Final `y` against final `x` (or a swept hyperparameter).
    Final {
        /// Output file stem.
        file: String,
        /// Title (default: "y vs x").
        title: Option<String>,
        /// X metric or sweep key.
        x: String,
        /// Y metric.
        y: String,
        /// Logarithmic x axis (compression ratios span decades).
        #[serde(default)]
        log_x: bool,
        /// Logarithmic y axis.
        #[serde(default)]
        log_y: bool,
        /// Arms drawn as horizontal reference bands.
        #[serde(default)]
        reference: Vec<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Per-layer weight sparsity of each arm at its sweep point whose overall weight sparsity
    /// is closest to `target` (grouped bars, mean ± std over seeds).
    Layers {
        /// Output file stem.
        file: String,
        /// Title (default: "per-layer sparsity at ≈ target").
        title: Option<String>,
        /// Overall weight sparsity to match (0–1).
        target: f64,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Sparsity of the masked tensors after every topology update against the step, one line
    /// per arm and sweep point (mean over seeds with a ±1 std band), each run's target sparsity
    /// (its topology's `sparsity`) as a dashed line.
    Steps {
        /// Output file stem.
        file: String,
        /// Title (default: "sparsity over training steps").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Measured Hoyer sparsity of every sphere-constrained layer against its p (mean ± std over
    /// seeds), with the gamma hypothesis' predictions (closed form, Monte Carlo, fitted k;
    /// SPEC §1.2) as dashed lines in the layer's colour.
    Hoyer {
        /// Output file stem.
        file: String,
        /// Title (default: "Hoyer sparsity vs p").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// `mean(with) − mean(without)` of final `y` for each `[with, without]` pair of arms, at
    /// every sweep point of `with`, with 95% Welch intervals, against `x`.
    Gain {
        /// Output file stem.
        file: String,
        /// Title (default: "gain in y vs x").
        title: Option<String>,
        /// X metric or sweep key.
        x: String,
        /// Y metric (default: test accuracy).
        #[serde(default = "test_accuracy")]
        y: String,
        /// Logarithmic x axis.
        #[serde(default)]
        log_x: bool,
        /// `[with, without]` arm pairs, one line each.
        pairs: Vec<[String; 2]>,
    },
    /// Distribution of non-zero weight magnitudes at the end of training, one line per arm and
    /// sweep point.
    Histogram {
        /// Output file stem.
        file: String,
        /// Title (default: "magnitudes of non-zero weights").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
        /// Sweep points to keep: key → values (default: all).
        #[serde(default)]
        at: BTreeMap<String, Vec<Value>>,
    },
    /// Per-epoch `y`.
    Epochs {
        /// Output file stem.
        file: String,
        /// Title (default: "y over training").
        title: Option<String>,
        /// Y metric.
        y: String,
        /// Logarithmic y axis.
        #[serde(default)]
        log_y: bool,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
}

impl FigureSpec {
    /// Parses and validates a `[[figures]]` entry against the ablation's arm names and sweep keys.
    pub fn parse(
        value: &Value,
        arms: &[String],
        sweep_keys: &[String],
    ) -> Result<Self, ConfigError> {
        let spec: FigureSpec = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        let metric = |key: &str, field: &str, sweep_ok: bool| -> Result<(), ConfigError> {
            if metric_info(key).is_some() || (sweep_ok && sweep_keys.iter().any(|k| k == key)) {
                Ok(())
            } else {
                let mut allowed: Vec<&str> = crate::record::METRICS.iter().map(|m| m.key).collect();
                if sweep_ok {
                    allowed.extend(sweep_keys.iter().map(String::as_str));
                }
                allowed.dedup();
                Err(ConfigError::new(
                    field,
                    format!("unknown metric `{key}` (allowed: {})", allowed.join(", ")),
                ))
            }
        };
        let known_arms = |listed: &[String], field: &str| -> Result<(), ConfigError> {
            match listed.iter().find(|a| !arms.contains(a)) {
                Some(bad) => Err(ConfigError::new(
                    field,
                    format!("unknown arm `{bad}` (allowed: {})", arms.join(", ")),
                )),
                None => Ok(()),
            }
        };
        match &spec {
            FigureSpec::Final {
                x,
                y,
                reference,
                arms: selected,
                ..
            } => {
                metric(x, "x", true)?;
                metric(y, "y", false)?;
                known_arms(reference, "reference")?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Epochs {
                y, arms: selected, ..
            } => {
                metric(y, "y", false)?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Layers {
                target,
                arms: selected,
                ..
            } => {
                sparselab_core::config::check_closed("target", *target, 0.0, 1.0)?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Steps { arms: selected, .. } | FigureSpec::Hoyer { arms: selected, .. } => {
                known_arms(selected, "arms")?
            }
            FigureSpec::Gain { x, y, pairs, .. } => {
                metric(x, "x", true)?;
                metric(y, "y", false)?;
                if pairs.is_empty() {
                    return Err(ConfigError::new(
                        "pairs",
                        "at least one [with, without] pair of arms",
                    ));
                }
                known_arms(&pairs.concat(), "pairs")?;
            }
            FigureSpec::Histogram {
                arms: selected, at, ..
            } => {
                known_arms(selected, "arms")?;
                if let Some(bad) = at.keys().find(|k| !sweep_keys.contains(k)) {
                    return Err(ConfigError::new(
                        "at",
                        format!("`{bad}` is not swept (allowed: {})", sweep_keys.join(", ")),
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// Output file stem.
    pub fn file(&self) -> &str {
        match self {
            FigureSpec::Final { file, .. }
            | FigureSpec::Epochs { file, .. }
            | FigureSpec::Layers { file, .. }
            | FigureSpec::Steps { file, .. }
            | FigureSpec::Hoyer { file, .. }
            | FigureSpec::Gain { file, .. }
            | FigureSpec::Histogram { file, .. } => file,
        }
    }
}

/// The metric a figure plots when it names none.
fn test_accuracy() -> String {
    "test_accuracy".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_metric_and_arm_are_rejected_with_allowed_values() {
        let arms = vec!["dense".to_string()];
        let err = FigureSpec::parse(
            &serde_json::json!({"kind": "final", "file": "f", "x": "compresion", "y": "test_accuracy"}),
            &arms,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.key, "x");
        assert!(err.message.contains("compression"));
        let err = FigureSpec::parse(
            &serde_json::json!({"kind": "epochs", "file": "f", "y": "test_accuracy", "arms": ["gmp"]}),
            &arms,
            &[],
        )
        .unwrap_err();
        assert!(err.message.contains("unknown arm `gmp`"));
        let sweep = vec!["optimizer.mu".to_string()];
        assert!(FigureSpec::parse(
            &serde_json::json!({"kind": "final", "file": "f", "x": "optimizer.mu", "y": "test_accuracy"}),
            &arms,
            &sweep
        )
        .is_ok());
    }
}
