//! `rmda`: regularised modernised dual averaging (Huang & Lee, ICLR 2022; SPEC.md §1.4).
//!
//! Within a stage of constant learning rate η, with `t` counted from the stage start and
//! `c ∈ (0, 1]` the averaging weight:
//!
//! ```text
//! β_t = √t,   s_t = η·β_t,   α_t = α_{t−1} + s_t   (α₀ = 0)
//! V_t = V_{t−1} + s_t·g_t                          (V₀ = 0)
//! W̃_t = prox_{(α_t/β_t)·λ·ψ}( W⁰ − V_t/β_t )
//! W_t = (1 − c)·W_{t−1} + c·W̃_t
//! ```
//!
//! `W⁰` is the weights at the stage start. At t = 1 this is one prox-SGD step mixed in with
//! weight c. The learning-rate schedule and the restarts are one mechanism: a stage *is* a run of
//! steps at one learning rate. When the learning rate handed to [`Optimizer::step`] changes (a
//! milestone of the `step` schedule multiplies it by γ), the optimiser restarts (`W⁰ ← W`,
//! `V ← 0`, `α ← 0`, `t ← 0`) and divides c by the same factor, `c ← min(c·η_old/η_new, 1)`
//! (SPEC: `c ← min(c/γ, 1)`), so schedule and restarts cannot drift apart. Parameters the
//! regularizer does not act on take the same update without the prox.

use crate::RecordState;
use crate::factory::SparseOptimizer;
use crate::prox::{Prox, ProxState};
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_closed;
use sparselab_core::{ConfigError, Lane, Validate, elementwise};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// Hyperparameters of [`Rmda`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmdaConfig {
    /// Initial averaging weight c (1 = no averaging); multiplied by 1/γ at every milestone.
    pub c: f64,
}

impl Default for RmdaConfig {
    fn default() -> Self {
        Self { c: 0.01 }
    }
}

impl Validate for RmdaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_closed("c", self.c, f64::MIN_POSITIVE, 1.0)
    }
}

/// Regularised modernised dual averaging.
#[derive(Clone, Debug)]
pub struct Rmda {
    config: RmdaConfig,
    prox: Prox,
}

/// State of [`Rmda`].
#[derive(RecordState, Clone)]
pub struct RmdaState<const D: usize> {
    /// Stage anchor `W⁰`.
    pub anchor: Tensor<D>,
    /// `V_t = Σ s_i g_i` since the stage start.
    pub dual: Tensor<D>,
    /// `α_t = Σ s_i`.
    pub alpha: f64,
    /// Steps since the stage start.
    pub t: u64,
    /// Learning rate η of the stage.
    pub stage_lr: f64,
    /// Current averaging weight c.
    pub c: f64,
    /// The prox's state.
    pub prox: ProxState,
}

impl RmdaState<1> {
    /// Whether a learning rate `lr` starts a new stage after one at `stage_lr`.
    fn is_new_stage(stage_lr: f64, lr: f64) -> bool {
        (lr - stage_lr).abs() > 1e-12 * stage_lr.abs().max(lr.abs())
    }
}

impl SparseOptimizer for Rmda {
    type Config = RmdaConfig;
    const NAME: &'static str = "rmda";
    const SUMMARY: &'static str =
        "regularised modernised dual averaging, restart at lr milestones (SPEC §1.4)";
    const PROXIMAL: bool = true;
    const STAGED: bool = true;

    fn new(config: &RmdaConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            config: config.clone(),
            prox: Prox::new(regularizer),
        }
    }
}

/// `[dual, z]`: the dual sum `dual ← dual + s·g` and the prox's argument `z = w₀ − dual/β`, for
/// whole tensors or one element ([`Lane`]).
#[inline(always)]
fn dual_step<L: Lane>(s: f64, beta: f64, anchor: L, dual: L, g: L) -> [L; 2] {
    let dual = dual + g.mul_scalar(s);
    [dual.clone(), anchor - dual.div_scalar(beta)]
}

/// `(1 − c)·w + c·x`: the weights moved a fraction c toward the prox's output x.
#[inline(always)]
fn average<L: Lane>(c: f64, w: L, x: L) -> L {
    w.mul_scalar(1.0 - c) + x.mul_scalar(c)
}

impl Optimizer for Rmda {
    type State<const D: usize> = RmdaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let fresh = |c: f64| RmdaState {
            anchor: tensor.clone(),
            dual: tensor.zeros_like(),
            alpha: 0.0,
            t: 0,
            stage_lr: lr,
            c,
            prox: ProxState::default(),
        };
        let state = match state {
            None => fresh(self.config.c),
            Some(s) if RmdaState::is_new_stage(s.stage_lr, lr) => RmdaState {
                prox: s.prox,
                ..fresh((s.c * s.stage_lr / lr).min(1.0))
            },
            Some(s) => s,
        };
        let t = state.t + 1;
        let beta = (t as f64).sqrt();
        let s = lr * beta;
        let alpha = state.alpha + s;
        let (r, prox) = self.prox.reweight(&tensor, state.prox, lr);
        // The prox's argument goes into the gradient's storage, the averaged weights into the
        // candidate's.
        let anchor = &state.anchor;
        let [dual, z] = elementwise!([state.dual, grad], [anchor], |[dual, g], [w0]| {
            dual_step(s, beta, w0, dual, g)
        });
        let candidate = self.prox.apply(z, &r.scale(alpha / beta));
        let c = state.c;
        let w = if c >= 1.0 {
            candidate
        } else {
            let [w] = elementwise!([candidate], [&tensor], |[x], [w]| [average(c, w, x)]);
            w
        };
        (
            w,
            Some(RmdaState {
                anchor: state.anchor,
                dual,
                alpha,
                t,
                stage_lr: state.stage_lr,
                c,
                prox,
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.anchor = state.anchor.to_device(device);
        state.dual = state.dual.to_device(device);
        state.prox = state.prox.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, host, l1, run, soft, tensor};

    fn rmda(c: f64, lambda: f64) -> Rmda {
        Rmda::new(&RmdaConfig { c }, Some(l1(lambda)))
    }

    #[test]
    fn first_step_is_a_prox_sgd_step_mixed_with_weight_c() {
        let (w0, g, eta, lambda) = ([0.5f32, -0.2, 0.05], [0.3f32, 0.4, -0.1], 0.1f32, 0.3f32);
        let prox: Vec<f32> = (0..3)
            .map(|i| soft(w0[i] - eta * g[i], eta * lambda))
            .collect();
        assert_close(&run(&rmda(1.0, 0.3), &w0, &[&g], &[0.1]), &prox, 1e-7);
        let mixed: Vec<f32> = (0..3).map(|i| 0.9 * w0[i] + 0.1 * prox[i]).collect();
        assert_close(&run(&rmda(0.1, 0.3), &w0, &[&g], &[0.1]), &mixed, 1e-7);
    }

    #[test]
    fn second_step_hand_computed() {
        // c = 1, λ = 0: W̃₂ = W⁰ − (η·g₁ + η√2·g₂)/√2
        let w = run(&rmda(1.0, 0.0), &[1.0], &[&[1.0], &[2.0]], &[0.1, 0.1]);
        assert_close(
            &w,
            &[1.0 - (0.1 + 0.1 * 2f32.sqrt() * 2.0) / 2f32.sqrt()],
            1e-6,
        );
    }

    /// With c = 1 and λ = 0 on the quadratic ½‖w − w*‖² (gradient w − w*), the iterates
    /// converge to the minimiser (dual averaging forgets the anchor at rate O(1/t): the error
    /// after t steps is about ‖w⁰ − w*‖/(η·t)·const, so it must shrink tenfold from 2 000 to
    /// 20 000 steps).
    #[test]
    fn converges_on_a_quadratic() {
        let opt = rmda(1.0, 0.0);
        let target = [2.0f32, -1.0, 0.5];
        let mut w = tensor(&[0.0, 0.0, 0.0]);
        let mut state = None;
        let mut errors = Vec::new();
        for step in 1..=20_000 {
            let g = w.clone() - tensor(&target);
            let (next, s) = opt.step(0.05, w, g, state);
            w = next;
            state = s;
            if step == 2_000 || step == 20_000 {
                let v = host(w.clone());
                errors.push(
                    v.iter()
                        .zip(&target)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max),
                );
            }
        }
        assert!(
            errors[1] < 2e-3 && errors[1] < errors[0] / 5.0,
            "{errors:?}"
        );
    }

    /// A learning-rate change restarts the stage: the state is the stage-start state (anchor =
    /// current weights, V = 0, α = 0, t counted afresh) and c grows by the same factor.
    #[test]
    fn a_milestone_restarts_the_stage() {
        let opt = rmda(0.01, 0.1);
        let mut w = tensor(&[0.5, -0.3]);
        let mut state = None;
        for lr in [0.1, 0.1, 0.1] {
            let (next, s) = opt.step(lr, w, tensor(&[0.2, 0.1]), state);
            w = next;
            state = s;
        }
        let before = w.clone();
        let (after, s) = opt.step(0.01, w, tensor(&[0.2, 0.1]), state);
        let s = s.unwrap();
        assert_eq!(s.t, 1);
        assert_eq!(s.stage_lr, 0.01);
        assert!((s.c - 0.1).abs() < 1e-12, "c ← c/γ = {}", s.c);
        assert_close(&host(s.anchor.clone()), &host(before.clone()), 0.0);
        assert!((s.alpha - 0.01).abs() < 1e-15);
        assert_close(&host(s.dual.clone()), &[0.002, 0.001], 1e-8);
        // The restarted step is again the first step of a stage, from the new anchor.
        let b = host(before);
        let expected: Vec<f32> = (0..2)
            .map(|i| 0.9 * b[i] + 0.1 * soft(b[i] - 0.01 * [0.2f32, 0.1][i], 0.001))
            .collect();
        assert_close(&host(after), &expected, 1e-7);
        // c is capped at 1.
        let (_, s2) = opt.step(0.0001, tensor(&[0.0, 0.0]), tensor(&[0.0, 0.0]), Some(s));
        assert_eq!(s2.unwrap().c, 1.0);
    }
}
