//! `sgd`: stochastic gradient descent with heavy-ball (or Nesterov) momentum and weight decay.
//!
//! The dense baseline of SPEC.md §2 (`dense`) and the RMDA paper's `msgd` (§1.4): with
//! `d = g + wd·w`,
//!
//! ```text
//! v ← μ·v + d            (v₁ = d)
//! w ← w − η·v            heavy ball
//! w ← w − η·(d + μ·v)    Nesterov
//! ```
//!
//! which is PyTorch's `SGD` without dampening. It has no prox: it cannot carry a regularizer.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_half_open, check_non_negative};
use sparselab_core::{ConfigError, Validate};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`Sgd`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Momentum μ (0 = plain SGD).
    pub momentum: f64,
    /// Nesterov momentum instead of heavy ball.
    pub nesterov: bool,
    /// Weight decay `wd` (L2 added to the gradient), on every parameter.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl Validate for SgdConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("momentum", self.momentum, 0.0, 1.0)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// Momentum SGD.
#[derive(Clone, Debug)]
pub struct Sgd {
    config: Arc<SgdConfig>,
}

/// State of [`Sgd`]: the velocity `v`.
#[derive(RecordState, Clone)]
pub struct SgdState<const D: usize> {
    /// Velocity (absent without momentum).
    pub velocity: Option<Tensor<D>>,
}

impl Sgd {
    /// SGD with `config`.
    pub fn new(config: SgdConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl SparseOptimizer for Sgd {
    type Config = SgdConfig;
    const NAME: &'static str = "sgd";
    const SUMMARY: &'static str =
        "momentum SGD with weight decay: the dense baseline / msgd (SPEC §2, §1.4)";
    const PROXIMAL: bool = false;

    fn new(config: &SgdConfig, _regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Sgd::new(config.clone())
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let SgdConfig {
            momentum,
            nesterov,
            weight_decay,
        } = *self.config;
        let d = if weight_decay > 0.0 {
            grad + tensor.clone().mul_scalar(weight_decay)
        } else {
            grad
        };
        if momentum == 0.0 {
            return (tensor - d.mul_scalar(lr), Some(SgdState { velocity: None }));
        }
        let velocity = match state.and_then(|s| s.velocity) {
            Some(v) => v.mul_scalar(momentum) + d.clone(),
            None => d.clone(),
        };
        let direction = if nesterov {
            d + velocity.clone().mul_scalar(momentum)
        } else {
            velocity.clone()
        };
        (
            tensor - direction.mul_scalar(lr),
            Some(SgdState {
                velocity: Some(velocity),
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.velocity = state.velocity.map(|v| v.to_device(device));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, run};

    fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd {
        Sgd::new(SgdConfig {
            momentum,
            nesterov,
            weight_decay,
        })
    }

    #[test]
    fn plain_step_is_w_minus_lr_g() {
        let w = run(&sgd(0.0, false, 0.0), &[1.0, -2.0], &[&[0.5, 1.0]], &[0.1]);
        assert_close(&w, &[0.95, -2.1], 1e-7);
    }

    #[test]
    fn weight_decay_adds_wd_w_to_the_gradient() {
        let w = run(&sgd(0.0, false, 0.1), &[1.0], &[&[0.0]], &[1.0]);
        assert_close(&w, &[0.9], 1e-7);
    }

    #[test]
    fn heavy_ball_matches_hand_computation() {
        // v1 = g1 = 1; w1 = 1 - 0.1 = 0.9; v2 = 0.9*1 + 2 = 2.9; w2 = 0.9 - 0.29 = 0.61
        let w = run(
            &sgd(0.9, false, 0.0),
            &[1.0],
            &[&[1.0], &[2.0]],
            &[0.1, 0.1],
        );
        assert_close(&w, &[0.61], 1e-6);
    }

    #[test]
    fn nesterov_matches_hand_computation() {
        // v1 = 1, w1 = 1 - 0.1*(1 + 0.9) = 0.81; v2 = 2.9, w2 = 0.81 - 0.1*(2 + 2.61) = 0.349
        let w = run(&sgd(0.9, true, 0.0), &[1.0], &[&[1.0], &[2.0]], &[0.1, 0.1]);
        assert_close(&w, &[0.349], 1e-6);
    }

    #[test]
    fn config_rejects_momentum_of_one() {
        assert!(
            SgdConfig {
                momentum: 1.0,
                ..SgdConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
