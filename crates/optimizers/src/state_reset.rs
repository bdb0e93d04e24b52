//! Resetting the optimiser state of chosen entries: one mechanism for every optimiser.
//!
//! When a topology regrows a weight (SPEC §2: SET and RigL regrow at 0 with their momentum reset;
//! §1.2: semi-pruning regrows with momentum 0), the optimiser state of exactly those entries must
//! start afresh. Optimiser states are burn [`RecordState`]s: they flatten into named tensors and
//! scalars. [`zero_entries`] zeroes the chosen entries of every state tensor that has one value
//! per parameter entry (momentum, dual iterate, accumulated gradients, Adam moments, per-element
//! thresholds) and keeps everything else (scalars such as step counters, per-group statistics).
//! No optimiser has to know about it: [`Resettable`] wraps each one when
//! [`OptimizerFactory::build`](crate::OptimizerFactory::build) assembles the `ModuleOptimizer`,
//! one instance per parameter, and applies the resets requested through [`StateResets`] at that
//! parameter's next step.
//!
//! For an entry whose weight is 0 (SET, RigL, GMP: masked weights are exactly 0.0) zeroed state
//! is a fresh start at 0 for every optimiser of this crate: momentum methods restart their
//! velocity, dual-averaging methods their dual iterate and prox centre.

use burn::module::ParamId;
use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Resets requested by the training loop and not yet applied, per parameter (shared by every
/// [`Resettable`] of one `ModuleOptimizer`).
#[derive(Clone, Debug, Default)]
pub struct StateResets(Arc<Mutex<HashMap<ParamId, Vec<bool>>>>);

impl StateResets {
    /// At its next step, the optimiser of parameter `id` zeroes the state of the entries where
    /// `entries` is true (flags in burn's memory order, one per element). Requests made before
    /// that step accumulate.
    pub fn request(&self, id: ParamId, entries: Vec<bool>) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.get_mut(&id) {
            Some(old) if old.len() == entries.len() => {
                old.iter_mut().zip(&entries).for_each(|(o, e)| *o |= *e);
            }
            _ => {
                pending.insert(id, entries);
            }
        }
    }

    /// Whether any reset is waiting.
    pub fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The resets still pending (none applied yet), for a checkpoint.
    pub fn pending(&self) -> Vec<(ParamId, Vec<bool>)> {
        let pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.iter().map(|(id, e)| (*id, e.clone())).collect()
    }

    /// Replaces every pending reset by `pending` (those of a resumed checkpoint).
    pub fn replace(&self, pending: Vec<(ParamId, Vec<bool>)>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *map = pending.into_iter().collect();
    }

    fn take(&self, id: ParamId) -> Option<Vec<bool>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }
}

/// An optimiser for one parameter that applies that parameter's pending resets before its step.
#[derive(Clone, Debug)]
pub struct Resettable<O> {
    inner: O,
    id: ParamId,
    resets: StateResets,
}

impl<O> Resettable<O> {
    /// `inner`, stepping parameter `id`, with resets from `resets`.
    pub fn new(inner: O, id: ParamId, resets: StateResets) -> Self {
        Self { inner, id, resets }
    }
}

impl<O: Optimizer> Optimizer for Resettable<O> {
    type State<const D: usize> = O::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let state = match (state, self.resets.take(self.id)) {
            (Some(s), Some(entries)) => Some(zero_entries(s, &entries, &tensor.device())),
            (s, _) => s,
        };
        self.inner.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        O::to_device(state, device)
    }
}

/// `state` with the chosen `entries` set to 0 in every f32 state tensor that has exactly one
/// value per entry; all other tensors and every scalar unchanged.
pub fn zero_entries<S: RecordState>(state: S, entries: &[bool], device: &Device) -> S {
    const PREFIX: &str = "state";
    let mut sink = StateSink::default();
    state.state_flatten(PREFIX, &mut sink);
    let mut source = StateSource::new(sink.scalars.into_iter().collect());
    for (name, mut data) in sink.tensors {
        if data.num_elements() == entries.len()
            && let Ok(values) = data.as_mut_slice::<f32>()
        {
            for (v, _) in values.iter_mut().zip(entries).filter(|(_, e)| **e) {
                *v = 0.0;
            }
        }
        source.insert_tensor(name, data);
    }
    S::state_unflatten(PREFIX, &mut source, device)
        .expect("a state rebuilds from its own flattened record")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prox::ProxState;
    use crate::testing::{host, tensor};
    use crate::xrda::XrdaState;

    /// Every per-entry tensor (nested prox state included) is zeroed at the chosen entries; other
    /// entries, scalars and differently shaped tensors are kept.
    #[test]
    fn zero_entries_zeroes_per_entry_tensors_only() {
        let four = |v: &[f32]| tensor(v).reshape([1, v.len(), 1, 1]);
        let state = XrdaState::<2> {
            dual: tensor(&[1.0, 2.0, 3.0]),
            velocity: Some(tensor(&[4.0, 5.0, 6.0])),
            prox: ProxState {
                reweighting: Some(four(&[7.0, 8.0, 9.0])),
                threshold: 0.5,
                threshold_weights: Some(four(&[1.0, 1.0])),
            },
            initial_step: 0.1,
        };
        let out = zero_entries(state, &[false, true, false], &burn::tensor::Device::flex());
        assert_eq!(host(out.dual), vec![1.0, 0.0, 3.0]);
        assert_eq!(host(out.velocity.unwrap()), vec![4.0, 0.0, 6.0]);
        assert_eq!(host(out.prox.reweighting.unwrap()), vec![7.0, 0.0, 9.0]);
        assert_eq!(host(out.prox.threshold_weights.unwrap()), vec![1.0, 1.0]);
        assert_eq!((out.prox.threshold, out.initial_step), (0.5, 0.1));
    }

    #[test]
    fn requests_accumulate_until_taken() {
        let r = StateResets::default();
        let id = ParamId::new();
        r.request(id, vec![true, false, false]);
        r.request(id, vec![false, false, true]);
        assert_eq!(r.take(id), Some(vec![true, false, true]));
        assert!(r.is_empty() && r.take(id).is_none());
    }
}
