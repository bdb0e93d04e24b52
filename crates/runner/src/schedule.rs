//! Learning-rate schedules and the training hyperparameters that are not a method's.

use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_positive};
use sparselab_core::{ConfigError, Validate};

/// How the learning rate (step size) evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `η_n = η`.
    Constant,
    /// `η_n = ½·η·(1 + cos(π·(n − 1)/N))` over the `N` steps of the run: the first step uses η
    /// exactly (SPEC.md §1.1, xRDA's `cosine` schedule).
    Cosine,
    /// `η_n = η·γ^k`, `k` = number of milestones (epochs) already reached.
    Step,
}

/// Training hyperparameters shared by every method of an ablation (arms may override them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Initial learning rate η (the step size `s₀` of dual-averaging methods).
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Epochs at which the `step` schedule multiplies η by `gamma`.
    pub milestones: Vec<usize>,
    /// Factor of the `step` schedule.
    pub gamma: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch: 128,
            lr: 0.1,
            schedule: Schedule::Constant,
            milestones: Vec::new(),
            gamma: 0.1,
        }
    }
}

impl Validate for TrainConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.epochs == 0 {
            return Err(ConfigError::out_of_range("epochs", 0, "epochs >= 1"));
        }
        if self.batch == 0 {
            return Err(ConfigError::out_of_range("batch", 0, "batch >= 1"));
        }
        check_positive("lr", self.lr)?;
        check_closed("gamma", self.gamma, f64::MIN_POSITIVE, 1.0)?;
        if !self.milestones.windows(2).all(|w| w[0] < w[1])
            || self.milestones.iter().any(|&m| m == 0 || m >= self.epochs)
        {
            return Err(ConfigError::new(
                "milestones",
                format!(
                    "{:?}: milestones must be increasing epochs between 1 and epochs - 1 = {}",
                    self.milestones,
                    self.epochs - 1
                ),
            ));
        }
        if self.schedule != Schedule::Step && !self.milestones.is_empty() {
            return Err(ConfigError::new(
                "milestones",
                "only the `step` schedule uses milestones",
            ));
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Learning rate of optimiser step `step` (1-based) in a run of `total` steps with
    /// `per_epoch` steps per epoch.
    pub fn lr_at(&self, step: usize, per_epoch: usize, total: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let progress = (step.saturating_sub(1)) as f64 / total.max(1) as f64;
                0.5 * self.lr * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Step => {
                let epoch = step.saturating_sub(1) / per_epoch.max(1);
                let reached = self.milestones.iter().filter(|&&m| epoch >= m).count();
                self.lr * self.gamma.powi(reached as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_lr_and_decays_to_zero() {
        let t = TrainConfig {
            schedule: Schedule::Cosine,
            lr: 0.2,
            ..TrainConfig::default()
        };
        assert_eq!(t.lr_at(1, 10, 100), 0.2);
        assert!((t.lr_at(51, 10, 100) - 0.1).abs() < 1e-12);
        assert!(t.lr_at(100, 10, 100) < 1e-3);
    }

    #[test]
    fn step_multiplies_at_milestones() {
        let t = TrainConfig {
            schedule: Schedule::Step,
            milestones: vec![2, 4],
            epochs: 6,
            ..TrainConfig::default()
        };
        let lrs: Vec<f64> = [1, 20, 21, 40, 41, 60]
            .iter()
            .map(|&s| t.lr_at(s, 10, 60))
            .collect();
        let expected = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001];
        for (a, b) in lrs.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{lrs:?}");
        }
    }

    #[test]
    fn milestones_are_validated() {
        let bad = TrainConfig {
            schedule: Schedule::Step,
            milestones: vec![3, 2],
            ..TrainConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "milestones");
        let late = TrainConfig {
            schedule: Schedule::Step,
            milestones: vec![10],
            ..TrainConfig::default()
        };
        assert!(late.validate().is_err());
    }
}
