//! The [`Topology`] trait and the registry of topologies.

use burn::module::ParamId;
use sparselab_core::ParamInfo;

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
        Self::overall_sparsity(std::slice::from_ref(self))
    }

    /// Fraction of pruned elements over all of `masks` together.
    pub fn overall_sparsity(masks: &[Mask]) -> f64 {
        let (pruned, total) = masks.iter().fold((0, 0), |(p, n), m| {
            (p + m.keep.iter().filter(|k| !**k).count(), n + m.keep.len())
        });
        pruned as f64 / total.max(1) as f64
    }
}

/// What happens to a masked entry (SPEC §2, "Masks and latent weights"). The forward pass always
/// uses `w ⊙ m`; the policy says what the entry holds meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskedEntries {
    /// Zeroed for good: a masked weight is exactly 0.0 and a regrown one starts at 0 (`gmp`,
    /// `static`, `set`, `rigl`).
    Zeroed,
    /// Kept: the masked entry keeps a latent value that the optimiser goes on updating (with a
    /// zero gradient) and a regrown weight restarts from it (`semi-prune`, SPEC §1.2).
    Latent,
}

/// A rule for which weights exist over training (SPEC.md §2).
///
/// Contract (checked for every registered topology by `tests/topology_contract.rs`): with any
/// optimiser, masked entries of a [`MaskedEntries::Zeroed`] topology stay exactly 0.0; the final
/// sparsity of the masked tensors is [`target_sparsity`](Topology::target_sparsity) (or closer to
/// it than at the start, see [`reaches_target_exactly`](Topology::reaches_target_exactly)); a topology
/// that says it is [`monotone`](Topology::monotone) never regrows a pruned weight. Whenever an
/// update regrows entries, the training loop resets their optimiser state (one mechanism for
/// every optimiser: `sparselab_optimizers::state_reset`).
pub trait Topology: Send {
    /// Registered name.
    fn name(&self) -> &'static str;

    /// Whether the topology masks `param`. Default: every weight tensor, classifier included.
    fn applies_to(&self, param: &ParamInfo) -> bool {
        param.is_weight()
    }

    /// What masked entries hold. Default: zeroed for good.
    fn masked_entries(&self) -> MaskedEntries {
        MaskedEntries::Zeroed
    }

    /// Whether pruned weights never come back (pruning-only methods).
    fn monotone(&self) -> bool {
        false
    }

    /// The sparsity of the masked tensors at the end of training.
    fn target_sparsity(&self) -> f64;

    /// Whether the final sparsity is exactly the target (pruning schedules, constant-density
    /// methods) or only steered towards it (`semi-prune`'s threshold adaptation: the contract
    /// then asks that training ends closer to the target than it started). Default: exact.
    fn reaches_target_exactly(&self) -> bool {
        true
    }

    /// Masks before the first step (`None`: start dense). `weights` holds exactly the tensors
    /// the topology applies to.
    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>>;

    /// Whether [`update`](Topology::update) must run after optimiser step `step` (1-based).
    fn due(&self, step: usize) -> bool;

    /// Whether updates need the dense gradient of the current batch (regrowth methods). It is
    /// copied to the host only on steps where the topology is [`due`](Topology::due).
    fn needs_dense_grad(&self) -> bool {
        false
    }

    /// What the topology holds beyond its configuration, what [`init`](Topology::init) derives
    /// again and the masks in force, as plain data for a checkpoint (a run resumed mid-way).
    /// Default: nothing.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Continues an interrupted run: called after [`init`](Topology::init) (same context, same
    /// initial weights) with the masks in force when the checkpoint was written (`None`: none
    /// yet, training is still dense) and what [`state`](Topology::state) returned then. From
    /// here on, updates must be the ones the uninterrupted run makes, bit for bit (checked for
    /// every registered topology by `tests/resume_contract.rs`).
    ///
    /// # Errors
    /// If `state` is not what this topology's `state` writes.
    fn resume(&mut self, masks: Option<Vec<Mask>>, state: &serde_json::Value)
    -> Result<(), String>;

    /// New masks after step `step`, or `None` to keep the current ones. `weights` are the
    /// masked values `w ⊙ m` (never values an optimiser revived under the mask); `grads` (same
    /// order) is the gradient of the batch's loss with respect to every entry, masked ones
    /// included, given when [`needs_dense_grad`](Topology::needs_dense_grad) is true.
    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>>;
}
