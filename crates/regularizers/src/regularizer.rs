//! The [`Regularizer`] trait and the registry of regularizers.

use crate::prox::Threshold;
use burn::tensor::Tensor;
use sparselab_core::{ParamInfo, Weight};
use std::fmt::Debug;

/// A penalty `λ·ψ(w)` that optimisers apply through its proximal operator.
///
/// Optimisers call, for every parameter the regularizer [`applies_to`](Regularizer::applies_to):
/// [`reweight`](Regularizer::reweight) once per step (adaptive regularizers update their
/// per-element weights `r` there), then [`prox`](Regularizer::prox) with the threshold their
/// update rule prescribes (for example `η·r` for proximal SGD, the accumulated `B` for xRDA).
/// The regularizer multiplies that threshold by its own strength `λ`.
pub trait Regularizer: Send + Sync + Debug {
    /// Registered name.
    fn name(&self) -> &'static str;

    /// The strength `λ`.
    fn strength(&self) -> f64;

    /// Whether the regularizer acts on `param`. Default: every weight tensor (linear and conv,
    /// classifier included), never biases or normalisation parameters (SPEC.md, notation).
    fn applies_to(&self, param: &ParamInfo) -> bool {
        param.is_weight()
    }

    /// `ψ(w)` without `λ`, for reporting (an exact host-side value).
    fn penalty(&self, w: &Weight) -> f64;

    /// The per-element weights `r` of this step and the regularizer's updated state. `state`
    /// is what the previous call returned (`None` at the first step); `step_size` is the
    /// optimiser's current step size `s`. Default: `r ≡ 1`, stateless.
    fn reweight(
        &self,
        w: &Weight,
        state: Option<Tensor<4>>,
        step_size: f64,
    ) -> (Threshold, Option<Tensor<4>>) {
        let _ = (w, state, step_size);
        (Threshold::ONE, None)
    }

    /// `prox_{λ·θ·ψ}(z)`: the prox of the penalty scaled by `λ` and the optimiser's threshold θ.
    fn prox(&self, z: Weight, theta: &Threshold) -> Weight;

    /// `argmin_x ½(x − z)ᵀD(x − z) + λθψ(x)` for a diagonal metric `D = diag(d)`, `d > 0`
    /// (adaptive proximal methods such as ProxSSI); `None` if the regularizer has no such prox.
    fn prox_diagonal(&self, z: Weight, d: Tensor<4>, theta: f64) -> Option<Weight> {
        let _ = (z, d, theta);
        None
    }

    /// Whether [`prox_diagonal`](Regularizer::prox_diagonal) is implemented.
    fn has_diagonal_prox(&self) -> bool {
        false
    }
}
