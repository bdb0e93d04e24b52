//! `proxsgd`: proximal SGD with momentum (SPEC.md §1.1, the `a ≡ 0` case of xRDA; §1.4, the
//! form the RMDA authors run).
//!
//! ```text
//! d = g + wd·w
//! m ← (1 − ρ)·m + ρ·d          (m₀ = 0, so m₁ = ρ·d)
//! w ← prox_{η·λ·r·ψ}(w − η·m)
//! ```
//!
//! `ρ = 1` is plain proximal SGD. `ρ = 1 − e^{−s/τ}` makes it exactly xRDA with `a ≡ 0` and
//! momentum time scale τ at a constant step size `s = η`. The per-element weights `r` come from the
//! regularizer (1 for plain penalties). Parameters the regularizer does not act on take the same
//! step without the prox.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use crate::prox::{Prox, ProxState, ema};
use crate::weight_decay::WeightDecay;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_non_negative};
use sparselab_core::{ConfigError, Lane, Validate, elementwise};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`ProxSgd`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxSgdConfig {
    /// Weight of the new gradient in the momentum average ρ (1 = no momentum).
    pub rho: f64,
    /// Weight decay `wd` (added to the gradient), on every parameter.
    pub weight_decay: f64,
}

impl Default for ProxSgdConfig {
    fn default() -> Self {
        Self {
            rho: 0.1,
            weight_decay: 0.0,
        }
    }
}

impl Validate for ProxSgdConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_closed("rho", self.rho, f64::MIN_POSITIVE, 1.0)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// Proximal SGD with momentum.
#[derive(Clone, Debug)]
pub struct ProxSgd {
    config: ProxSgdConfig,
    prox: Prox,
}

/// State of [`ProxSgd`].
#[derive(RecordState, Clone)]
pub struct ProxSgdState<const D: usize> {
    /// Momentum average `m`.
    pub momentum: Tensor<D>,
    /// The prox's state.
    pub prox: ProxState,
}

impl SparseOptimizer for ProxSgd {
    type Config = ProxSgdConfig;
    const NAME: &'static str = "proxsgd";
    const SUMMARY: &'static str =
        "proximal SGD with momentum m ← (1−ρ)m + ρg (SPEC §1.1 a≡0, §1.4)";
    const PROXIMAL: bool = true;

    fn new(config: &ProxSgdConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            config: config.clone(),
            prox: Prox::new(regularizer),
        }
    }
}

impl ProxSgd {
    /// `[z, m]`: the new momentum `m ← (1 − ρ)·m + ρ·(g + wd·w)` and the point `z = w − η·m` the
    /// prox maps to the new weights, for whole tensors or one element ([`Lane`]).
    #[inline(always)]
    fn momentum_step<L: Lane>(&self, lr: f64, w: L, g: L, m: Option<L>) -> [L; 2] {
        let ProxSgdConfig { rho, weight_decay } = self.config;
        let d = WeightDecay(weight_decay).apply(g, &w);
        let m = ema(m, d, 1.0 - rho);
        [w - m.clone().mul_scalar(lr), m]
    }
}

impl Optimizer for ProxSgd {
    type State<const D: usize> = ProxSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (previous, prox) = match state {
            Some(s) => (Some(s.momentum), s.prox),
            None => (None, ProxState::default()),
        };
        let (r, prox) = self.prox.reweight(&tensor, prox, lr);
        // The first step keeps m in the gradient's storage.
        let [z, momentum] = match previous {
            Some(m) => elementwise!([tensor, m], [&grad], |[w, m], [g]| {
                self.momentum_step(lr, w, g, Some(m))
            }),
            None => elementwise!([tensor, grad], [], |[w, g], []| {
                self.momentum_step(lr, w, g, None)
            }),
        };
        let w = self.prox.apply(z, &r.scale(lr));
        (w, Some(ProxSgdState { momentum, prox }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state.prox = state.prox.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, l1, run};

    #[test]
    fn hand_computed_steps_with_momentum_and_prox() {
        let opt = ProxSgd::new(
            &ProxSgdConfig {
                rho: 0.5,
                weight_decay: 0.0,
            },
            Some(l1(1.0)),
        );
        // m1 = 0.5·g = (1, -0.2); z = w - 0.1 m = (0.9, 0.52); threshold 0.1 → (0.8, 0.42)
        let w = run(&opt, &[1.0, 0.5], &[&[2.0, -0.4]], &[0.1]);
        assert_close(&w, &[0.8, 0.42], 1e-6);
        // second step g = (0, 0): m2 = 0.5 m1 = (0.5, -0.1); z = (0.75, 0.43); → (0.65, 0.33)
        let w = run(&opt, &[1.0, 0.5], &[&[2.0, -0.4], &[0.0, 0.0]], &[0.1, 0.1]);
        assert_close(&w, &[0.65, 0.33], 1e-6);
    }

    #[test]
    fn without_regularizer_it_is_ema_momentum_sgd() {
        let opt = ProxSgd::new(
            &ProxSgdConfig {
                rho: 1.0,
                weight_decay: 0.0,
            },
            None,
        );
        let w = run(&opt, &[1.0], &[&[0.5], &[0.5]], &[0.2, 0.2]);
        assert_close(&w, &[0.8], 1e-7);
    }
}
