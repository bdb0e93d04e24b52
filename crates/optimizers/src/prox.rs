//! The regularizer side of a proximal optimiser step, shared by every proximal optimiser.

use burn::tensor::Tensor;
use sparselab_core::Weight;
use sparselab_regularizers::{Regularizer, Threshold};
use std::sync::Arc;

/// The regularizer an optimiser instance applies (none for parameters it does not act on: their
/// update is the optimiser's plain update).
#[derive(Clone, Debug, Default)]
pub struct Prox(Option<Arc<dyn Regularizer>>);

impl Prox {
    /// Applies `regularizer` (or nothing).
    pub fn new(regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self(regularizer)
    }

    /// The per-element weights `r` of this step and the regularizer's new state (`r ≡ 1` and no
    /// state without a regularizer).
    pub fn reweight<const D: usize>(
        &self,
        w: &Tensor<D>,
        state: Option<Tensor<4>>,
        step_size: f64,
    ) -> (Threshold, Option<Tensor<4>>) {
        match &self.0 {
            Some(reg) => reg.reweight(&Weight::from_tensor(w.clone()), state, step_size),
            None => (Threshold::ONE, None),
        }
    }

    /// `prox_{λθψ}(z)`, or `z` without a regularizer.
    pub fn apply<const D: usize>(&self, z: Tensor<D>, theta: &Threshold) -> Tensor<D> {
        match &self.0 {
            Some(reg) => reg.prox(Weight::from_tensor(z), theta).into_tensor(),
            None => z,
        }
    }
}

/// A threshold accumulated across steps, stored as optimiser state (a scalar part and an
/// optional per-element part; burn's state records hold only tensors and scalars).
pub fn split(theta: Threshold) -> (f64, Option<Tensor<4>>) {
    match theta {
        Threshold::Scalar(s) => (s, None),
        Threshold::Tensor(t) => (0.0, Some(t)),
    }
}

/// The inverse of [`split`].
pub fn join(scalar: f64, tensor: Option<Tensor<4>>) -> Threshold {
    match tensor {
        Some(t) if scalar == 0.0 => Threshold::Tensor(t),
        Some(t) => Threshold::Tensor(t.add_scalar(scalar)),
        None => Threshold::Scalar(scalar),
    }
}

/// Exponential moving average `β·v + (1 − β)·d` (`v = 0` initially: the first value is
/// `(1 − β)·d`), the momentum of the dual-averaging and RMDA-style proximal methods.
pub fn ema<const D: usize>(v: Option<Tensor<D>>, d: Tensor<D>, beta: f64) -> Tensor<D> {
    match v {
        Some(v) if beta > 0.0 => v.mul_scalar(beta) + d.mul_scalar(1.0 - beta),
        _ => d.mul_scalar(1.0 - beta),
    }
}
