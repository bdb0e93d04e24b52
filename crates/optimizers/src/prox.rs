//! The regularizer side of a proximal optimiser step, shared by every proximal optimiser: one
//! component ([`Prox`]) with its own state ([`ProxState`]), composed into each optimiser the way
//! burn-optim composes `Momentum` and `MomentumState`. A proximal optimiser holds one `Prox`
//! field and one `ProxState` field in its state; nothing about reweighting or accumulated
//! thresholds is threaded by hand.

use crate::RecordState;
use burn::tensor::{Device, Tensor};
use sparselab_core::{Lane, Weight, fused};
use sparselab_regularizers::{Regularizer, Threshold};
use std::sync::Arc;

/// The regularizer an optimiser instance applies (none for parameters it does not act on: their
/// update is the optimiser's plain update).
#[derive(Clone, Debug, Default)]
pub struct Prox(Option<Arc<dyn Regularizer>>);

/// The state of a [`Prox`]: the regularizer's reweighting state (SPEC §1.1, the moving average
/// of magnitudes of `reweighted-l1`) and the threshold a dual-averaging method accumulates
/// (`B` of xRDA, `G_n` of gRDA), scalar or per element.
#[derive(RecordState, Clone, Default)]
pub struct ProxState {
    /// The regularizer's reweighting state (`None`: stateless or not started).
    pub reweighting: Option<Tensor<4>>,
    /// Accumulated threshold: scalar part.
    pub threshold: f64,
    /// Accumulated threshold: per-element part (reweighted regularizers).
    pub threshold_weights: Option<Tensor<4>>,
}

impl Prox {
    /// Applies `regularizer` (or nothing).
    pub fn new(regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        Self(regularizer)
    }

    /// The regularizer, if any.
    pub fn regularizer(&self) -> Option<&Arc<dyn Regularizer>> {
        self.0.as_ref()
    }

    /// The per-element weights `r` of this step (`r ≡ 1` without a regularizer) and the state
    /// with the regularizer's reweighting state advanced by one step of size `step_size`.
    pub fn reweight<const D: usize>(
        &self,
        w: &Tensor<D>,
        state: ProxState,
        step_size: f64,
    ) -> (Threshold, ProxState) {
        match &self.0 {
            Some(reg) => {
                let (r, reweighting) = reg.reweight(
                    &Weight::from_tensor(w.clone()),
                    state.reweighting,
                    step_size,
                );
                (
                    r,
                    ProxState {
                        reweighting,
                        ..state
                    },
                )
            }
            None => (Threshold::ONE, state),
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

impl ProxState {
    /// `B ← decay·B + add`: one step of an accumulated threshold.
    #[must_use]
    pub fn accumulate(self, decay: f64, add: Threshold) -> Self {
        let state = match self.accumulate_in_place(decay, &add) {
            Ok(done) => return done,
            Err(state) => state,
        };
        let (threshold, threshold_weights) = (state.accumulated().scale(decay) + add).into_parts();
        Self {
            threshold,
            threshold_weights,
            ..state
        }
    }

    /// [`ProxState::accumulate`] of a per-element `B` and `add` as one pass in place on flex
    /// ([`fused`]), `add` evaluated inside it ([`sparselab_regularizers::Lazy`]): bit for bit the
    /// tensor ops `B·decay + add`. `Err` gives the state back unchanged for the tensor-op form.
    // The state is small (two handles and a scalar); boxing it would only add an allocation.
    #[allow(clippy::result_large_err)]
    fn accumulate_in_place(mut self, decay: f64, add: &Threshold) -> Result<Self, Self> {
        let lazy = match add.per_element() {
            Some(lazy) if self.threshold == 0.0 => lazy,
            _ => return Err(self),
        };
        let Some(b) = self.threshold_weights.take() else {
            return Err(self);
        };
        let source = lazy.source.clone().expand(b.shape());
        let decay = decay as f32;
        let result = fused::update_in_place([b], [&source], |[b], [t]| {
            lazy.for_chunks(
                t,
                #[inline(always)]
                |range, theta| {
                    b[range]
                        .iter_mut()
                        .zip(theta)
                        .for_each(|(b, t)| *b = *b * decay + t);
                },
            );
        });
        match result {
            Ok([b]) => {
                self.threshold_weights = Some(b);
                Ok(self)
            }
            Err([b]) => {
                self.threshold_weights = Some(b);
                Err(self)
            }
        }
    }

    /// The accumulated threshold `B`.
    pub fn accumulated(&self) -> Threshold {
        match &self.threshold_weights {
            Some(t) if self.threshold == 0.0 => Threshold::Tensor(t.clone()),
            Some(t) => Threshold::Tensor(t.clone().add_scalar(self.threshold)),
            None => Threshold::Scalar(self.threshold),
        }
    }

    /// The state on `device`.
    #[must_use]
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            reweighting: self.reweighting.map(|r| r.to_device(device)),
            threshold_weights: self.threshold_weights.map(|t| t.to_device(device)),
            ..self
        }
    }
}

/// Exponential moving average `β·v + (1 − β)·d` (`v = 0` initially: the first value is
/// `(1 − β)·d`), the momentum of the dual-averaging and RMDA-style proximal methods.
/// Written against [`Lane`]: whole tensors or one element of a fused pass.
#[inline(always)]
pub fn ema<L: Lane>(v: Option<L>, d: L, beta: f64) -> L {
    match v {
        Some(v) if beta > 0.0 => v.mul_scalar(beta) + d.mul_scalar(1.0 - beta),
        _ => d.mul_scalar(1.0 - beta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn t(values: &[f32]) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [1, values.len(), 1, 1]),
            &Device::flex(),
        )
    }

    fn host(theta: &Threshold) -> Vec<f32> {
        match theta {
            Threshold::Scalar(s) => vec![*s as f32],
            other => other
                .clone()
                .into_parts()
                .1
                .expect("per element")
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap(),
        }
    }

    #[test]
    fn accumulate_is_decay_times_b_plus_increment() {
        let s = ProxState::default()
            .accumulate(0.5, Threshold::Scalar(2.0))
            .accumulate(0.5, Threshold::Scalar(1.0));
        assert_eq!(host(&s.accumulated()), vec![2.0]); // 0.5·2 + 1
        let s = s.accumulate(0.5, Threshold::Tensor(t(&[1.0, 3.0])));
        assert_eq!(host(&s.accumulated()), vec![2.0, 4.0]); // 0.5·2 + [1, 3]
        let s = s.accumulate(0.0, Threshold::Scalar(1.0));
        assert_eq!(host(&s.accumulated()), vec![1.0, 1.0]);
    }
}
