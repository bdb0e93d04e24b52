//! The [`Topology`] trait and the registry of topologies.

use burn::module::ParamId;
use sparselab_core::{Entry, ParamInfo, Registry};

/// What a topology knows about the run it shapes.
#[derive(Clone, Debug)]
pub struct TopologyContext {
    /// Optimiser steps in the whole run.
    pub total_steps: usize,
    /// Optimiser steps per epoch.
    pub steps_per_epoch: usize,
    /// The run's seed (random masks draw from its `"topology"` stream).
    pub seed: u64,
}

/// A weight tensor's description and host copy of its values.
#[derive(Clone, Copy, Debug)]
pub struct HostWeight<'a> {
    /// What the tensor is.
    pub info: &'a ParamInfo,
    /// Its values, flattened in burn's memory order.
    pub values: &'a [f32],
}

/// Which elements of one weight tensor exist (`true`) or are pruned (`false`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// The parameter masked.
    pub id: ParamId,
    /// One flag per element, in burn's memory order.
    pub keep: Vec<bool>,
}

impl Mask {
    /// Fraction of pruned elements.
    pub fn sparsity(&self) -> f64 {
        let pruned = self.keep.iter().filter(|k| !**k).count();
        pruned as f64 / self.keep.len().max(1) as f64
    }
}

/// A rule for which weights exist over training (SPEC.md §2).
pub trait Topology: Send {
    /// Registered name.
    fn name(&self) -> &'static str;

    /// Whether the topology masks `param`. Default: every weight tensor, classifier included.
    fn applies_to(&self, param: &ParamInfo) -> bool {
        param.is_weight()
    }

    /// Masks before the first step (`None`: start dense). `weights` holds exactly the tensors
    /// the topology applies to.
    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>>;

    /// Whether [`update`](Topology::update) must run after optimiser step `step` (1-based).
    fn due(&self, step: usize) -> bool;

    /// Whether updates need the dense gradient of the current batch (regrowth methods).
    fn needs_dense_grad(&self) -> bool {
        false
    }

    /// New masks after step `step`, or `None` to keep the current ones. `grads` (same order as
    /// `weights`) is given when [`needs_dense_grad`](Topology::needs_dense_grad) is true.
    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>>;
}

/// Every registered topology. Adding one: a file with a `FromConfig` impl and one line here.
/// An arm without a topology trains dense.
pub fn registry() -> Registry<dyn Topology> {
    Registry::new(
        "topology",
        vec![
            Entry::of::<crate::gmp::Gmp>(),
            Entry::of::<crate::static_mask::StaticMask>(),
        ],
    )
}
