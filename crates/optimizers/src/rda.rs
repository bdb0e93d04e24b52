//! `rda`: ℓ1 regularised dual averaging (Xiao 2010; SPEC.md §1.1), with any regularizer's prox
//! (the group version is the RMDA paper's baseline, §1.4).
//!
//! `w_{t+1} = argmin ⟨ḡ_t, w⟩ + λψ(w) + (γ/√t)·½‖w − w₀‖²`, with `ḡ_t` the mean of the first t
//! gradients and `w₀` the initial weights; with `η = 1/γ` the closed form is
//!
//! ```text
//! w_{t+1} = prox_{λ·η·√t·r·ψ}( w₀ − η·(Σ_{i≤t} g_i)/√t )
//! ```
//!
//! η is the learning rate of the current step (a schedule rescales the whole iterate). Parameters
//! the regularizer does not act on take `w₀ − η·Σg/√t`. No momentum, no weight decay.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use crate::prox::{Prox, ProxState};
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Lane, Validate, elementwise};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`Rda`]: none (η is the learning rate, λ the regularizer's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RdaConfig {}

impl Validate for RdaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Regularised dual averaging.
#[derive(Clone, Debug)]
pub struct Rda {
    prox: Prox,
}

/// State of [`Rda`].
#[derive(RecordState, Clone)]
pub struct RdaState<const D: usize> {
    /// The prox centre `w₀`.
    pub initial: Tensor<D>,
    /// `Σ g_i`.
    pub grad_sum: Tensor<D>,
    /// Steps taken `t`.
    pub t: u64,
    /// The prox's state.
    pub prox: ProxState,
}

impl SparseOptimizer for Rda {
    type Config = RdaConfig;
    const NAME: &'static str = "rda";
    const SUMMARY: &'static str =
        "regularised dual averaging (Xiao's ℓ1-RDA, any prox) (SPEC §1.1, §1.4)";
    const PROXIMAL: bool = true;

    fn new(_config: &RdaConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            prox: Prox::new(regularizer),
        }
    }
}

/// `[z, Σg]`: the gradient sum with this step's gradient `g` added (none: it is already in) and
/// the point `z = w₀ − scale·Σg` the prox maps to the new weights, for whole tensors or one
/// element ([`Lane`]).
#[inline(always)]
fn dual_step<L: Lane>(scale: f64, initial: L, grad_sum: L, g: Option<L>) -> [L; 2] {
    let sum = match g {
        Some(g) => grad_sum + g,
        None => grad_sum,
    };
    [initial - sum.clone().mul_scalar(scale), sum]
}

impl Optimizer for Rda {
    type State<const D: usize> = RdaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (initial, grad_sum, t, prox) = match state {
            Some(s) => (s.initial, Some(s.grad_sum), s.t + 1, s.prox),
            None => (tensor.clone(), None, 1, ProxState::default()),
        };
        let sqrt_t = (t as f64).sqrt();
        let (r, prox) = self.prox.reweight(&tensor, prox, lr);
        let scale = lr / sqrt_t;
        // z goes into the old weights' storage; the first step keeps Σg in the gradient's.
        let [z, grad_sum] = match grad_sum {
            Some(sum) => elementwise!([tensor, sum], [&initial, &grad], |[_, sum], [w0, g]| {
                dual_step(scale, w0, sum, Some(g))
            }),
            None => elementwise!([tensor, grad], [&initial], |[_, g], [w0]| {
                dual_step(scale, w0, g, None)
            }),
        };
        let w = self.prox.apply(z, &r.scale(lr * sqrt_t));
        (
            w,
            Some(RdaState {
                initial,
                grad_sum,
                t,
                prox,
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.initial = state.initial.to_device(device);
        state.grad_sum = state.grad_sum.to_device(device);
        state.prox = state.prox.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, l1, run, soft};

    /// Several steps against Xiao's closed form `S_{λη√t}(w₀ − η Σg/√t)`.
    #[test]
    fn matches_the_closed_form_over_several_steps() {
        let (lambda, eta) = (0.05f32, 0.3f32);
        let opt = Rda::new(&RdaConfig {}, Some(l1(f64::from(lambda))));
        let w0 = [0.5f32, -0.2, 0.05];
        let grads: [&[f32]; 4] = [
            &[0.1, 0.2, -0.3],
            &[0.4, -0.1, 0.0],
            &[-0.2, 0.3, 0.1],
            &[0.0, 0.05, 0.2],
        ];
        for steps in 1..=grads.len() {
            let w = run(&opt, &w0, &grads[..steps], &vec![f64::from(eta); steps]);
            let t = steps as f32;
            let expected: Vec<f32> = (0..3)
                .map(|i| {
                    let sum: f32 = grads[..steps].iter().map(|g| g[i]).sum();
                    soft(w0[i] - eta * sum / t.sqrt(), lambda * eta * t.sqrt())
                })
                .collect();
            assert_close(&w, &expected, 1e-6);
        }
    }

    #[test]
    fn plain_update_is_dual_averaging_without_prox() {
        let opt = Rda::new(&RdaConfig {}, None);
        let w = run(&opt, &[1.0], &[&[1.0], &[1.0]], &[0.5, 0.5]);
        assert_close(&w, &[1.0 - 0.5 * 2.0 / 2f32.sqrt()], 1e-6);
    }
}
