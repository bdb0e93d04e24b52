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
use sparselab_core::{ConfigError, Validate, fused};
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

impl Sgd {
    /// The update as tensor ops: the form for backends without a fused one ([`sparselab_core::fused`]).
    fn step_ops<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
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
        let velocity = match velocity {
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

    /// The update of one element, the same f32 operations in the same order as [`Sgd::step_ops`]:
    /// `w` and the velocity `v` in place (`v` is written, not read, when `first`).
    ///
    /// SGD keeps this hand-written form beside its tensor-op form rather than one function over
    /// [`sparselab_core::Lane`] (as the proximal optimisers do): written against `Lane` and run
    /// through `fused::map_in_place`, its loop did not vectorise and the update took 345 µs
    /// instead of 58 µs on LeNet-300-100 (measured 2026-12-02). SGD is every comparison's
    /// baseline, so it keeps the fast loop; the proptest below ties the two forms.
    #[inline(always)]
    fn element(&self, lr: f32, w: &mut f32, v: &mut f32, g: f32, first: bool) {
        let SgdConfig {
            momentum,
            nesterov,
            weight_decay,
        } = *self.config;
        let d = if weight_decay > 0.0 {
            g + *w * weight_decay as f32
        } else {
            g
        };
        if momentum == 0.0 {
            *w -= d * lr;
            return;
        }
        let mu = momentum as f32;
        *v = if first { d } else { *v * mu + d };
        let direction = if nesterov { d + *v * mu } else { *v };
        *w -= direction * lr;
    }

    /// The update as one pass over memory ([`sparselab_core::fused`]); `Err` gives the tensors back where
    /// the backend has no fused form. The first step writes the velocity into the gradient's
    /// storage (v₁ = d); without momentum there is no velocity.
    // `Err` hands the tensors back by value, once per parameter and step: boxing them would
    // only add an allocation.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn step_fused<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> Result<(Tensor<D>, Option<SgdState<D>>), (Tensor<D>, Tensor<D>, Option<Tensor<D>>)> {
        let lr = lr as f32;
        if self.config.momentum == 0.0 {
            return match fused::update_in_place([tensor], [&grad], |[w], [g]| {
                for (w, g) in w.iter_mut().zip(g.iter()) {
                    self.element(lr, w, &mut 0.0, *g, true);
                }
            }) {
                Ok([w]) => Ok((w, Some(SgdState { velocity: None }))),
                Err([w]) => Err((w, grad, velocity)),
            };
        }
        let updated = match velocity {
            Some(v) => fused::update_in_place([tensor, v], [&grad], |[w, v], [g]| {
                for ((w, v), g) in w.iter_mut().zip(v.iter_mut()).zip(g.iter()) {
                    self.element(lr, w, v, *g, false);
                }
            })
            .map_err(|[w, v]| (w, grad, Some(v))),
            None => fused::update_in_place([tensor, grad], [], |[w, g], []| {
                for (w, g) in w.iter_mut().zip(g.iter_mut()) {
                    let grad = *g;
                    self.element(lr, w, g, grad, true);
                }
            })
            .map_err(|[w, g]| (w, g, None)),
        }?;
        let [w, v] = updated;
        Ok((w, Some(SgdState { velocity: Some(v) })))
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
        let velocity = state.and_then(|s| s.velocity);
        match self.step_fused(lr, tensor, grad, velocity) {
            Ok(updated) => updated,
            Err((tensor, grad, velocity)) => self.step_ops(lr, tensor, grad, velocity),
        }
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

    /// `steps` steps of `opt` from `w0`, by the fused form (`fused = true`, which must apply) or
    /// the tensor-op form; the bits of the final weights and velocity.
    fn trajectory(
        opt: &Sgd,
        w0: &[f32],
        grads: &[Vec<f32>],
        lr: f64,
        fused: bool,
    ) -> (Vec<u32>, Option<Vec<u32>>) {
        let (mut w, mut v) = (tensor(w0), None);
        for g in grads {
            let (next, state) = if fused {
                opt.step_fused(lr, w, tensor(g), v)
                    .unwrap_or_else(|_| panic!("flex f32 tensors take the fused form"))
            } else {
                opt.step_ops(lr, w, tensor(g), v)
            };
            w = next;
            v = state.and_then(|s| s.velocity);
        }
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
                trajectory(&opt, &w, &grads, lr, true),
                trajectory(&opt, &w, &grads, lr, false)
            );
        }
    }

    /// Off flex (here: an autodiff tensor) the fused form gives the tensors back unchanged, and
    /// `step` takes the tensor-op form.
    #[test]
    fn without_a_fused_form_the_tensors_come_back() {
        let opt = sgd(0.9, false, 0.0);
        let w = tensor(&[1.0, 2.0]).autodiff();
        let Err((w, g, v)) = opt.step_fused(0.1, w, tensor(&[0.5, 0.5]).autodiff(), None) else {
            panic!("an autodiff tensor has no fused form");
        };
        assert!(w.is_autodiff() && v.is_none());
        assert_eq!(host(w.inner()), vec![1.0, 2.0]);
        assert_eq!(host(g.inner()), vec![0.5, 0.5]);
        let (w, _) = opt.step(
            0.1,
            tensor(&[1.0, 2.0]).autodiff(),
            tensor(&[0.5, 0.5]).autodiff(),
            None,
        );
        assert_close(&host(w.inner()), &[0.95, 1.95], 1e-7);
    }
}
