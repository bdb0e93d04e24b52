//! The [`LossTerm`] trait and the registry of loss terms.

use burn::tensor::Tensor;

/// Block features of one forward pass: `[stage][block]`, each `[N, C·H·W]` (SPEC §1.3: blocks
/// between two down-samplings form a stage).
pub type StageFeatures = [Vec<Tensor<2>>];

/// A term added to the task loss.
///
/// Contract (checked for every registered term by `tests/loss_contract.rs`): the value is a
/// finite scalar tensor of shape `[1]` on the features' device, and its autodiff gradient with
/// respect to the model's parameters matches finite differences.
pub trait LossTerm: Send + Sync {
    /// Registered name.
    fn name(&self) -> &'static str;

    /// Steps between evaluations `b` (1: every step).
    fn every(&self) -> usize;

    /// Whether the term is computed at step `step` (1-based): steps 1, 1 + b, 1 + 2b, ...
    fn due(&self, step: usize) -> bool {
        step.saturating_sub(1).is_multiple_of(self.every().max(1))
    }

    /// The term's value (shape `[1]`, strength included) on `features`; `None` when the model
    /// has no features the term can use.
    fn loss(&self, features: &StageFeatures) -> Option<Tensor<1>>;
}
