//! `xrda`: the generalised RDA with momentum of Siegel et al. (SPEC.md §1.1).
//!
//! Per weight tensor, with step size `s_n`, averaging parameter `a_n ∈ [0, 1]`, momentum time
//! scale τ and weight decay `wd`:
//!
//! ```text
//! d = g + wd·w
//! B ← a_n·B + s_n·r                          (r ≡ 1 for plain ℓ1)
//! P ← a_n·P + (1 − a_n)·w                    (P₀ = w₀)
//! v ← e^{−s_n/τ}·v + (1 − e^{−s_n/τ})·d      (v₀ = 0)
//! P ← P − s_n·v
//! w ← prox_{λ·B·ψ}(P)
//! ```
//!
//! `a ≡ 0` is proximal SGD with momentum ([`ProxSgd`](crate::proxsgd::ProxSgd) with
//! `ρ = 1 − e^{−s/τ}`); `a ≡ 1` is dual averaging (ℓ1-RDA when `r ≡ 1`, without momentum).
//!
//! The step size is the learning rate, so the run's schedule drives it. The averaging parameter
//! follows the same schedule (`averaging = "lr"`): `a_n = 1 − (1 − a₀)·s_n/s₀`, `s₀` the first
//! step size. With the `cosine` schedule this is exactly SPEC's `a_n = ½(1 − cos(πn/N))` (prox-SGD
//! at the start, RDA at the end); with the `step` schedule (γ = ½) each milestone halves `s` and
//! sets `a ← 1 − (1 − a)/2`. One mechanism drives both, so they cannot drift apart.
//! `averaging = "constant"` keeps `a_n = a₀`. `tau = 0` disables momentum (`v = d`). Weight decay
//! applies to every parameter; parameters the regularizer does not act on take the same update
//! without the prox (`w = P`).

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

/// How the averaging parameter `a_n` evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// `a_n = 1 − (1 − a₀)·s_n/s₀`: tied to the learning-rate schedule.
    Lr,
    /// `a_n = a₀`.
    Constant,
}

/// Hyperparameters of [`Xrda`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XrdaConfig {
    /// Initial averaging parameter `a₀` (0: start as proximal SGD).
    pub a: f64,
    /// How `a_n` evolves.
    pub averaging: Averaging,
    /// Momentum time scale τ in units of the step size (`s = 1, τ = 9.5` is SGD momentum 0.9 at
    /// learning rate 0.1); 0 disables momentum.
    pub tau: f64,
    /// Weight decay `wd`, on every parameter.
    pub weight_decay: f64,
}

impl Default for XrdaConfig {
    fn default() -> Self {
        Self {
            a: 0.0,
            averaging: Averaging::Lr,
            tau: 9.5,
            weight_decay: 5e-4,
        }
    }
}

impl Validate for XrdaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_closed("a", self.a, 0.0, 1.0)?;
        check_non_negative("tau", self.tau)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// Generalised RDA with momentum.
#[derive(Clone, Debug)]
pub struct Xrda {
    config: XrdaConfig,
    prox: Prox,
}

/// State of [`Xrda`].
#[derive(RecordState, Clone)]
pub struct XrdaState<const D: usize> {
    /// Dual iterate `P`.
    pub dual: Tensor<D>,
    /// Momentum `v` (absent without momentum).
    pub velocity: Option<Tensor<D>>,
    /// The prox's state, with the accumulated threshold `B`.
    pub prox: ProxState,
    /// First step size `s₀`.
    pub initial_step: f64,
}

impl Xrda {
    /// `a_n` at step size `s` when the first step size was `s0`.
    pub fn averaging_at(&self, s: f64, s0: f64) -> f64 {
        match self.config.averaging {
            Averaging::Constant => self.config.a,
            Averaging::Lr => (1.0 - (1.0 - self.config.a) * s / s0).clamp(0.0, 1.0),
        }
    }
}

/// The scalars of one step: size `s`, averaging `a` and the velocity's decay `e^{−s/τ}` (`None`
/// when τ = 0), computed once per step rather than per element.
#[derive(Clone, Copy)]
struct StepScalars {
    s: f64,
    a: f64,
    keep: Option<f64>,
}

/// The three cases of the averaging `a` in [`Xrda::dual_step`]: the dual point restarts at the
/// weights (`a = 0`), holds (`a = 1`) or blends the two.
struct Mix;

impl Mix {
    const RESTART: u8 = 0;
    const HOLD: u8 = 1;
    const BLEND: u8 = 2;
}

impl Xrda {
    /// `[z, dual, v]` of one step of size `s` with averaging `a`, for whole tensors or one element
    /// ([`Lane`]): `d = g + wd·w`, the velocity `v ← e^{−s/τ}·v + (1 − e^{−s/τ})·d` (`d` itself
    /// when τ = 0; `v` is `None` before the first step), the dual point
    /// `dual ← a·dual + (1 − a)·w − s·v`, and the prox's argument `z` (its value).
    ///
    /// `MIX` says which of `a = 0`, `a = 1` or `0 < a < 1` holds ([`Mix`]), as a constant, so a
    /// fused loop carries no branch on it.
    #[inline(always)]
    fn dual_step<L: Lane, const MIX: u8>(
        &self,
        k: StepScalars,
        w: L,
        dual: L,
        g: L,
        v: Option<L>,
    ) -> [L; 3] {
        let StepScalars { s, a, keep } = k;
        let d = WeightDecay(self.config.weight_decay).apply(g, &w);
        let dual = match MIX {
            Mix::RESTART => w,
            Mix::HOLD => dual,
            _ => dual.mul_scalar(a) + w.mul_scalar(1.0 - a),
        };
        let v = match keep {
            Some(keep) => ema(v, d, keep),
            None => d,
        };
        let dual = dual - v.clone().mul_scalar(s);
        [dual.clone(), dual, v]
    }

    /// [`Xrda::dual_step`] on whole tensors ([`elementwise!`]).
    fn fused_dual_step<const D: usize, const MIX: u8>(
        &self,
        k: StepScalars,
        tensor: Tensor<D>,
        dual: Tensor<D>,
        velocity: Option<Tensor<D>>,
        grad: Tensor<D>,
    ) -> [Tensor<D>; 3] {
        // The prox's argument goes into the old weights' storage; without a velocity yet (or
        // with τ = 0) it goes into the gradient's.
        match velocity {
            Some(v) => elementwise!([tensor, dual, v], [&grad], |[w, dual, v], [g]| {
                self.dual_step::<_, MIX>(k, w, dual, g, Some(v))
            }),
            None => elementwise!([tensor, dual, grad], [], |[w, dual, g], []| {
                self.dual_step::<_, MIX>(k, w, dual, g, None)
            }),
        }
    }
}

impl SparseOptimizer for Xrda {
    type Config = XrdaConfig;
    const NAME: &'static str = "xrda";
    const SUMMARY: &'static str =
        "generalised RDA with momentum, a_n tied to the lr schedule (SPEC §1.1)";
    const PROXIMAL: bool = true;

    fn new(config: &XrdaConfig, regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self {
            config: config.clone(),
            prox: Prox::new(regularizer),
        }
    }
}

impl Optimizer for Xrda {
    type State<const D: usize> = XrdaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let s = lr;
        let XrdaState {
            dual,
            velocity,
            prox,
            initial_step,
        } = state.unwrap_or_else(|| XrdaState {
            dual: tensor.clone(),
            velocity: None,
            prox: ProxState::default(),
            initial_step: s,
        });
        let a = self.averaging_at(s, initial_step);
        let (r, prox) = self.prox.reweight(&tensor, prox, s);
        let prox = prox.accumulate(a, r.scale(s));
        let k = StepScalars {
            s,
            a,
            keep: (self.config.tau > 0.0).then(|| (-s / self.config.tau).exp()),
        };
        let [z, dual, velocity] = match a {
            0.0 => self.fused_dual_step::<D, { Mix::RESTART }>(k, tensor, dual, velocity, grad),
            1.0 => self.fused_dual_step::<D, { Mix::HOLD }>(k, tensor, dual, velocity, grad),
            _ => self.fused_dual_step::<D, { Mix::BLEND }>(k, tensor, dual, velocity, grad),
        };
        let w = self.prox.apply(z, &prox.accumulated());
        (
            w,
            Some(XrdaState {
                dual,
                velocity: (self.config.tau > 0.0).then_some(velocity),
                prox,
                initial_step,
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.dual = state.dual.to_device(device);
        state.velocity = state.velocity.map(|v| v.to_device(device));
        state.prox = state.prox.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grda::{Grda, GrdaConfig};
    use crate::proxsgd::{ProxSgd, ProxSgdConfig};
    use crate::testing::{assert_close, l1, run};
    use proptest::prelude::*;

    fn xrda(a: f64, averaging: Averaging, tau: f64, weight_decay: f64, lambda: f64) -> Xrda {
        Xrda::new(
            &XrdaConfig {
                a,
                averaging,
                tau,
                weight_decay,
            },
            Some(l1(lambda)),
        )
    }

    proptest! {
        /// a ≡ 1, r ≡ 1, no momentum, no weight decay: xRDA is gRDA with μ = 1, c = 1/√s (the
        /// threshold λ·n·s is the regularizer's λ times gRDA's G_n = c·s^{3/2}·n).
        #[test]
        fn xrda_with_a_one_equals_grda_with_mu_one(
            grads in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 3), 1..8),
            w0 in proptest::collection::vec(-1.0f32..1.0, 3),
            s in 0.01f64..0.5,
            lambda in 0.0f64..0.5,
        ) {
            let grads: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
            let lrs = vec![s; grads.len()];
            let x = run(&xrda(1.0, Averaging::Constant, 0.0, 0.0, lambda), &w0, &grads, &lrs);
            let g = run(&Grda::new(&GrdaConfig { c: 1.0 / s.sqrt(), mu: 1.0 }, Some(l1(lambda))), &w0, &grads, &lrs);
            assert_close(&x, &g, 1e-5);
        }

        /// a ≡ 0 is proximal SGD with momentum ρ = 1 − e^{−s/τ}, weight decay included.
        #[test]
        fn xrda_with_a_zero_equals_proxsgd(
            grads in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 3), 1..8),
            w0 in proptest::collection::vec(-1.0f32..1.0, 3),
            s in 0.01f64..0.5,
            tau in 0.05f64..10.0,
            lambda in 0.0f64..0.5,
        ) {
            let grads: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
            let lrs = vec![s; grads.len()];
            let x = run(&xrda(0.0, Averaging::Constant, tau, 1e-2, lambda), &w0, &grads, &lrs);
            let rho = 1.0 - (-s / tau).exp();
            let p = run(&ProxSgd::new(&ProxSgdConfig { rho, weight_decay: 1e-2 }, Some(l1(lambda))), &w0, &grads, &lrs);
            assert_close(&x, &p, 1e-5);
        }
    }

    #[test]
    fn averaging_follows_the_cosine_schedule() {
        let x = xrda(0.0, Averaging::Lr, 9.5, 0.0, 0.0);
        // s_n = ½ s₀ (1 + cos θ) ⇒ a_n = ½ (1 − cos θ)
        for theta in [0.0, 0.3, 1.0, 2.0, std::f64::consts::PI] {
            let s = 0.5 * 0.8 * (1.0 + f64::cos(theta));
            assert!((x.averaging_at(s, 0.8) - 0.5 * (1.0 - f64::cos(theta))).abs() < 1e-12);
        }
        // Step schedule with γ = ½: a ← 1 − (1 − a)/2 per milestone.
        let x = xrda(0.2, Averaging::Lr, 9.5, 0.0, 0.0);
        assert!((x.averaging_at(0.5, 1.0) - (1.0 - 0.8 / 2.0)).abs() < 1e-12);
        assert!((x.averaging_at(0.25, 1.0) - (1.0 - 0.8 / 4.0)).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_two_steps_with_momentum() {
        // s = 1, τ = 1 ⇒ β = e^{-1}; a = ½ constant; λ = 0.1; wd = 0.
        let x = xrda(0.5, Averaging::Constant, 1.0, 0.0, 0.1);
        let beta = (-1.0f64).exp() as f32;
        let (w0, g1, g2) = (1.0f32, 0.5f32, -0.2f32);
        // Step 1: B = 1; P = ½w0 + ½w0 = 1; v = (1−β)g1; P = 1 − v; w = S_{0.1}(P)
        let v1 = (1.0 - beta) * g1;
        let p1 = w0 - v1;
        let w1 = p1 - 0.1;
        // Step 2: B = ½·1 + 1 = 1.5; P = ½p1 + ½w1; v = βv1 + (1−β)g2; P −= v; w = S_{0.15}(P)
        let v2 = beta * v1 + (1.0 - beta) * g2;
        let p2 = 0.5 * p1 + 0.5 * w1 - v2;
        let w2 = p2 - 0.15;
        let w = run(&x, &[w0], &[&[g1], &[g2]], &[1.0, 1.0]);
        assert_close(&w, &[w2], 1e-6);
    }
}
