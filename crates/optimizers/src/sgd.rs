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
use crate::weight_decay::WeightDecay;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_half_open, check_non_negative};
use sparselab_core::{ConfigError, Lane, Validate, elementwise};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Held by value, not behind a pointer: the fused update reads it once per element, and
    /// read through an `Arc` those loads are not hoisted out of the loop, which then stays
    /// scalar.
    config: SgdConfig,
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
        Self { config }
    }
}

impl SparseOptimizer for Sgd {
    type Config = SgdConfig;
    const NAME: &'static str = "sgd";
    const SUMMARY: &'static str =
        "momentum SGD with weight decay: the dense baseline / msgd (SPEC §2, §1.4)";
    const PROXIMAL: bool = false;

    fn new(config: &SgdConfig, _regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Sgd::new(*config)
    }
}

impl Sgd {
    /// `[w, v]` after one step with momentum, for whole tensors or one element ([`Lane`]): with
    /// `d = g + wd·w`, the velocity `v ← μ·v + d` (`v₁ = d`: `v` is `None` before the first
    /// step) and `w ← w − η·v`, or `w ← w − η·(d + μ·v)` with Nesterov.
    /// `NESTEROV` is [`SgdConfig::nesterov`] as a constant, so the per-element loop carries no
    /// branch on it (a branch inside keeps the loop scalar).
    #[inline(always)]
    fn update<const NESTEROV: bool, L: Lane>(&self, lr: f64, w: L, g: L, v: Option<L>) -> [L; 2] {
        let SgdConfig {
            momentum,
            weight_decay,
            ..
        } = self.config;
        let d = WeightDecay(weight_decay).apply(g, &w);
        let v = match v {
            Some(v) => v.mul_scalar(momentum) + d.clone(),
            None => d.clone(),
        };
        let direction = if NESTEROV {
            d + v.clone().mul_scalar(momentum)
        } else {
            v.clone()
        };
        [w - direction.mul_scalar(lr), v]
    }

    /// `[w]` after one step without momentum: `w ← w − η·(g + wd·w)`.
    #[inline(always)]
    fn plain_update<L: Lane>(&self, lr: f64, w: L, g: L) -> [L; 1] {
        let d = WeightDecay(self.config.weight_decay).apply(g, &w);
        [w - d.mul_scalar(lr)]
    }
}

impl Sgd {
    /// `[w, v]` after one momentum step on whole tensors; the first step writes the velocity
    /// into the gradient's storage (`v₁ = d`).
    fn momentum_step<const NESTEROV: bool, const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> [Tensor<D>; 2] {
        match state.and_then(|s| s.velocity) {
            Some(v) => elementwise!([tensor, v], [&grad], |[w, v], [g]| {
                self.update::<NESTEROV, _>(lr, w, g, Some(v))
            }),
            None => elementwise!([tensor, grad], [], |[w, g], []| {
                self.update::<NESTEROV, _>(lr, w, g, None)
            }),
        }
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
        if self.config.momentum == 0.0 {
            let [w] = elementwise!([tensor], [&grad], |[w], [g]| self.plain_update(lr, w, g));
            return (w, Some(SgdState { velocity: None }));
        }
        let [w, v] = if self.config.nesterov {
            self.momentum_step::<true, D>(lr, tensor, grad, state)
        } else {
            self.momentum_step::<false, D>(lr, tensor, grad, state)
        };
        (w, Some(SgdState { velocity: Some(v) }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.velocity = state.velocity.map(|v| v.to_device(device));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, host, run, tensor};
    use proptest::prelude::*;

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

    /// `steps` steps of `opt` from `w0`, in the fused form or (`tensor_ops`) the tensor-op
    /// form; the bits of the final weights and velocity.
    fn trajectory(
        opt: &Sgd,
        w0: &[f32],
        grads: &[Vec<f32>],
        lr: f64,
        tensor_ops: bool,
    ) -> (Vec<u32>, Option<Vec<u32>>) {
        let run = || {
            let (mut w, mut state) = (tensor(w0), None);
            for g in grads {
                (w, state) = opt.step(lr, w, tensor(g), state);
            }
            (w, state.and_then(|s: SgdState<2>| s.velocity))
        };
        let (w, v) = if tensor_ops {
            sparselab_core::fused::with_tensor_ops(run)
        } else {
            run()
        };
        let bits = |t: Tensor<2>| host(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        (bits(w), v.map(bits))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The fused update is the tensor-op update bit for bit (`fused`'s invariant), with and
        /// without momentum, Nesterov and weight decay, over several steps (the first writes
        /// v₁ = d into the gradient's storage).
        #[test]
        fn fused_step_equals_tensor_ops_bit_for_bit(
            (w, grads) in (1usize..40).prop_flat_map(|n| (
                proptest::collection::vec(-2.0f32..2.0, n),
                proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, n), 1..5),
            )),
            momentum in prop_oneof![Just(0.0), 0.0f64..0.99],
            nesterov in any::<bool>(),
            weight_decay in prop_oneof![Just(0.0), 0.0f64..0.1],
            lr in 1e-4f64..0.5,
        ) {
            let opt = sgd(momentum, nesterov, weight_decay);
            prop_assert_eq!(
                trajectory(&opt, &w, &grads, lr, false),
                trajectory(&opt, &w, &grads, lr, true)
            );
        }
    }

    /// Off flex (here: an autodiff tensor) `step` takes the tensor-op form.
    #[test]
    fn without_a_fused_form_the_tensor_op_form_runs() {
        let opt = sgd(0.9, false, 0.0);
        let (w, _) = opt.step(
            0.1,
            tensor(&[1.0, 2.0]).autodiff(),
            tensor(&[0.5, 0.5]).autodiff(),
            None,
        );
        assert!(w.is_autodiff());
        assert_close(&host(w.inner()), &[0.95, 1.95], 1e-7);
    }
}
