//! `proxssi`: AdamW followed by the regularizer's prox in Adam's diagonal metric (Deleu & Bengio
//! 2021, "structured sparsity inducing" adaptive optimisers; SPEC.md §1.4).
//!
//! ```text
//! m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,   m̂ = m/(1 − β₁ᵗ),   v̂ = v/(1 − β₂ᵗ)
//! z = w − η·(m̂/(√v̂ + ε) + wd·w)                    (AdamW step, decoupled weight decay)
//! w ← argmin_x ½(x − z)ᵀD(x − z) + η·λ·ψ(x),       D = diag(√v̂ + ε)
//! ```
//!
//! For the group lasso the prox zeroes a group when `‖D·z_g‖ ≤ ηλ√|g|` and otherwise solves the
//! 1-D secular equation for the group's scale by Newton's method
//! ([`group_prox_diagonal`](sparselab_regularizers::prox::group_prox_diagonal)); for ℓ1 it is
//! `S_{ηλ/d_i}` elementwise. Parameters the regularizer does not act on take the AdamW step.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_half_open, check_non_negative, check_positive};
use sparselab_core::{ConfigError, Lane, Validate, Weight, elementwise};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`ProxSsi`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxSsiConfig {
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// ε of the metric `√v̂ + ε`.
    pub epsilon: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for ProxSsiConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl Validate for ProxSsiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("beta1", self.beta1, 0.0, 1.0)?;
        check_half_open("beta2", self.beta2, 0.0, 1.0)?;
        check_positive("epsilon", self.epsilon)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// AdamW with a prox in Adam's metric.
#[derive(Clone, Debug)]
pub struct ProxSsi {
    config: ProxSsiConfig,
    regularizer: Option<Arc<dyn Regularizer>>,
}

/// State of [`ProxSsi`].
#[derive(RecordState, Clone)]
pub struct ProxSsiState<const D: usize> {
    /// First moment m.
    pub m: Tensor<D>,
    /// Second moment v.
    pub v: Tensor<D>,
    /// Steps taken.
    pub t: u64,
}

impl SparseOptimizer for ProxSsi {
    type Config = ProxSsiConfig;
    const NAME: &'static str = "proxssi";
    const SUMMARY: &'static str =
        "AdamW + group prox in the metric √v̂+ε, Newton per group (SPEC §1.4)";
    const PROXIMAL: bool = true;

    fn new(config: &ProxSsiConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            config: config.clone(),
            regularizer,
        }
    }

    fn rejects(regularizer: &dyn Regularizer) -> Option<String> {
        (!regularizer.has_diagonal_prox()).then(|| {
            format!(
                "regularizer `{}` has no prox in a diagonal metric, which proxssi needs (use l1 or group-lasso)",
                regularizer.name()
            )
        })
    }
}

impl ProxSsi {
    /// `[z, m, v, D]` of step `t`, for whole tensors or one element ([`Lane`]): the moments
    /// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, the metric `D = √(v/(1 − β₂ᵗ)) + ε` and
    /// the prox's argument `z = w − η·m̂/D − η·wd·w`, `m̂ = m/(1 − β₁ᵗ)`.
    /// `corrections` = `(1 − β₁ᵗ, 1 − β₂ᵗ)`, computed once per step.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn adam_step<L: Lane>(&self, lr: f64, (c1, c2): (f64, f64), w: L, g: L, m: L, v: L) -> [L; 4] {
        let ProxSsiConfig {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.config;
        let m = m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1);
        let v = v.mul_scalar(beta2) + (g.clone() * g).mul_scalar(1.0 - beta2);
        let m_hat = m.clone().div_scalar(c1);
        let metric = v.clone().div_scalar(c2).sqrt().add_scalar(epsilon);
        let mut z = w.clone() - (m_hat / metric.clone()).mul_scalar(lr);
        if weight_decay > 0.0 {
            z = z - w.mul_scalar(lr * weight_decay);
        }
        [z, m, v, metric]
    }
}

impl Optimizer for ProxSsi {
    type State<const D: usize> = ProxSsiState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (m, v, t) = match state {
            Some(s) => (s.m, s.v, s.t + 1),
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let c = (
            1.0 - self.config.beta1.powi(t as i32),
            1.0 - self.config.beta2.powi(t as i32),
        );
        // z goes into the old weights' storage, the metric into the gradient's.
        let [z, m, v, metric] = elementwise!([tensor, m, v, grad], [], |[w, m, v, g], []| {
            self.adam_step(lr, c, w, g, m, v)
        });
        let w = match &self.regularizer {
            Some(reg) => reg
                .prox_diagonal(
                    Weight::from_tensor(z),
                    Weight::from_tensor(metric).value,
                    lr,
                )
                .unwrap_or_else(|| {
                    panic!(
                        "regularizer `{}` has no prox in a diagonal metric",
                        reg.name()
                    )
                })
                .into_tensor(),
            None => z,
        };
        (w, Some(ProxSsiState { m, v, t }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.m = state.m.to_device(device);
        state.v = state.v.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, l1, run, soft};

    #[test]
    fn first_step_is_a_sign_step_then_weighted_soft_threshold() {
        // t = 1: m̂ = g, v̂ = g², so z = w − η·g/(|g| + ε) ≈ w − η·sign(g); d = |g| + ε.
        let cfg = ProxSsiConfig {
            epsilon: 1e-8,
            ..ProxSsiConfig::default()
        };
        let opt = ProxSsi::new(&cfg, Some(l1(0.5)));
        let (w0, g) = ([1.0f32, 0.02, -0.3], [0.5f32, -0.1, 2.0]);
        let w = run(&opt, &w0, &[&g], &[0.01]);
        let expected: Vec<f32> = (0..3)
            .map(|i| soft(w0[i] - 0.01 * g[i].signum(), 0.01 * 0.5 / g[i].abs()))
            .collect();
        assert_close(&w, &expected, 1e-6);
    }

    #[test]
    fn without_regularizer_it_is_adamw() {
        let cfg = ProxSsiConfig {
            weight_decay: 0.1,
            ..ProxSsiConfig::default()
        };
        let opt = ProxSsi::new(&cfg, None);
        let w = run(&opt, &[1.0], &[&[0.5]], &[0.01]);
        assert_close(&w, &[1.0 - 0.01 - 0.01 * 0.1], 1e-6);
    }
}
