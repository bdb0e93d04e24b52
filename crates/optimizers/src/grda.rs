//! `grda`: generalised regularised dual averaging (Chao, Wang, Xing, Cheng 2020; SPEC.md §1.1).
//!
//! ```text
//! w_{n+1} = S_{λ·g(n,γ)}( w₀ − γ·Σ_{i≤n} g_i ),    g(n, γ) = c·γ^{1/2}·(nγ)^μ
//! ```
//!
//! accumulated incrementally so learning-rate schedules work:
//! `A_n = A_{n−1} − γ_n·g_n` (`A₀ = w₀`), `G_n = G_{n−1} + c·γ_n^{μ+1/2}·(n^μ − (n−1)^μ)`,
//! `w_{n+1} = prox_{λ·G_n·r·ψ}(A_n)`.
//!
//! Choice of ours: the threshold is multiplied by the regularizer's λ (every optimiser here leaves
//! the penalty's strength to the regularizer), so the paper's absolute threshold is obtained with
//! `l1` at `lambda = 1`, and `c = λ_paper`. Then `μ = 1` with `c = 1/√s` reproduces ℓ1-RDA/xRDA at
//! a constant step `s` (both give `S_{λ·n·s}(w₀ − s·Σg)`), and `c = 0` is plain SGD. No momentum,
//! no weight decay.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use crate::prox::{Prox, ProxState};
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_non_negative};
use sparselab_core::{ConfigError, Lane, Validate, elementwise};
use sparselab_regularizers::{Regularizer, Threshold};
use std::sync::Arc;

/// Hyperparameters of [`Grda`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrdaConfig {
    /// Threshold scale `c` (useful range (0, 0.01] with λ = 1).
    pub c: f64,
    /// Threshold growth exponent μ (useful range [0.501, 0.7]; 1 = ℓ1-RDA).
    pub mu: f64,
}

impl Default for GrdaConfig {
    fn default() -> Self {
        Self { c: 0.005, mu: 0.55 }
    }
}

impl Validate for GrdaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("c", self.c)?;
        check_closed("mu", self.mu, 0.5, 1.0)
    }
}

/// Generalised RDA.
#[derive(Clone, Debug)]
pub struct Grda {
    config: GrdaConfig,
    prox: Prox,
}

/// State of [`Grda`].
#[derive(RecordState, Clone)]
pub struct GrdaState<const D: usize> {
    /// `A_n = w₀ − Σ γ_i g_i`.
    pub accumulator: Tensor<D>,
    /// Steps taken `n`.
    pub n: u64,
    /// The prox's state, with the accumulated threshold `G_n`.
    pub prox: ProxState,
}

impl Grda {
    /// Threshold increment of step `n` at step size `gamma`: `c·γ^{μ+½}·(n^μ − (n−1)^μ)`.
    pub fn increment(&self, n: u64, gamma: f64) -> f64 {
        let GrdaConfig { c, mu } = self.config;
        let n = n as f64;
        c * gamma.powf(mu + 0.5) * (n.powf(mu) - (n - 1.0).powf(mu))
    }
}

impl SparseOptimizer for Grda {
    type Config = GrdaConfig;
    const NAME: &'static str = "grda";
    const SUMMARY: &'static str = "generalised RDA, threshold c·γ^½(nγ)^μ accumulated (SPEC §1.1)";
    const PROXIMAL: bool = true;

    fn new(config: &GrdaConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            config: config.clone(),
            prox: Prox::new(regularizer),
        }
    }
}

/// `[z, acc]`: the accumulator `acc ← acc − η·g` and the prox's argument (its value), for whole
/// tensors or one element ([`Lane`]).
#[inline(always)]
fn accumulate<L: Lane>(lr: f64, acc: L, g: L) -> [L; 2] {
    let acc = acc - g.mul_scalar(lr);
    [acc.clone(), acc]
}

impl Optimizer for Grda {
    type State<const D: usize> = GrdaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (accumulator, n, prox) = match state {
            Some(s) => (Some(s.accumulator), s.n + 1, s.prox),
            None => (None, 1, ProxState::default()),
        };
        let prox = prox.accumulate(1.0, Threshold::Scalar(self.increment(n, lr)));
        let (r, prox) = self.prox.reweight(&tensor, prox, lr);
        // The prox's argument goes into the old weights' storage; the first step keeps the
        // accumulator (w₀ − η·g) in the gradient's.
        let [z, accumulator] = match accumulator {
            Some(acc) => elementwise!([tensor, acc], [&grad], |[_, acc], [g]| accumulate(
                lr, acc, g
            )),
            None => elementwise!([tensor, grad], [], |[w, g], []| accumulate(lr, w, g)),
        };
        let w = self.prox.apply(z, &r.scale(prox.threshold));
        (
            w,
            Some(GrdaState {
                accumulator,
                n,
                prox,
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.accumulator = state.accumulator.to_device(device);
        state.prox = state.prox.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgd::{Sgd, SgdConfig};
    use crate::testing::{assert_close, l1, run, soft};

    const GRADS: [&[f32]; 4] = [
        &[0.3, -0.2, 0.01],
        &[0.1, 0.4, -0.02],
        &[-0.5, 0.1, 0.03],
        &[0.2, 0.2, 0.0],
    ];

    #[test]
    fn threshold_accumulates_to_the_closed_form_at_constant_step() {
        let g = Grda::new(&GrdaConfig { c: 0.01, mu: 0.6 }, None);
        let gamma = 0.1f64;
        let total: f64 = (1..=5).map(|n| g.increment(n, gamma)).sum();
        let closed = 0.01 * gamma.sqrt() * (5.0 * gamma).powf(0.6);
        assert!((total - closed).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_iterate() {
        let (c, mu, gamma) = (0.2f64, 0.6f64, 0.1f64);
        let opt = Grda::new(&GrdaConfig { c, mu }, Some(l1(1.0)));
        let w0 = [0.5f32, -0.1, 0.02];
        let w = run(&opt, &w0, &GRADS[..2], &[gamma, gamma]);
        let thr = (c * gamma.sqrt() * (2.0 * gamma).powf(mu)) as f32;
        let expected: Vec<f32> = (0..3)
            .map(|i| soft(w0[i] - 0.1 * (GRADS[0][i] + GRADS[1][i]), thr))
            .collect();
        assert_close(&w, &expected, 1e-6);
    }

    #[test]
    fn c_zero_is_plain_sgd() {
        let grda = Grda::new(&GrdaConfig { c: 0.0, mu: 0.55 }, Some(l1(1.0)));
        let sgd = Sgd::new(SgdConfig {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        });
        let lrs = [0.1, 0.05, 0.2, 0.1];
        let w0 = [0.5, -0.1, 0.02];
        assert_close(
            &run(&grda, &w0, &GRADS, &lrs),
            &run(&sgd, &w0, &GRADS, &lrs),
            1e-6,
        );
    }
}
