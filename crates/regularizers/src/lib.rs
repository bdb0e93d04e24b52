//! Sparsity-inducing regularizers: penalties `λ·ψ(w)` applied through their proximal operators.
//!
//! A [`Regularizer`] says which parameters it acts on, how strong it is (`λ`), what its penalty
//! is (for reporting), how to reweight itself from the current weights (adaptive methods), and
//! how to apply its prox. Optimisers in `sparselab-optimizers` own *when* the prox is applied
//! and with which threshold; the shared prox machinery lives in [`prox`],
//! thresholds (scalar, per element, lazy) in [`threshold`].
//!
//! Members (one file each): [`l1`], [`reweighted_l1`], [`group_lasso`].

pub mod group_lasso;
mod host;
pub mod l1;
pub mod prox;
mod registry;
mod regularizer;
pub mod reweighted_l1;
#[cfg(test)]
mod testing;
pub mod threshold;

pub use registry::registry;
pub use regularizer::Regularizer;
pub use threshold::{ElementMap, Factors, Lazy, Threshold};
