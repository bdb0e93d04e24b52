//! What every run records (SPEC.md §3) and how results are summarised over seeds.
//!
//! Weight metrics work on host copies of the parameters, in [`ParamTable`](sparselab_core::ParamTable)
//! order; a weight counts as zero only if it is exactly `0.0`.
//!
//! - [`sparsity`]: unstructured sparsity (weights, all parameters), per-layer sparsity,
//!   compression ratio, theoretical speedup from non-zero FLOPs.
//! - [`group`]: group sparsity over input units, structure churn and identification epoch.
//! - [`conv_structure`]: zero kernels and filters of conv weights (the reweighted ℓ1's
//!   structured modes).
//! - [`cka`]: linear and RBF CKA (feature and Gram forms), unbiased HSIC and minibatch CKA
//!   (SPEC §1.3), on burn tensors, so the CKA-SR loss term differentiates the same code.
//! - [`hoyer`]: Hoyer sparsity per row, layer and network.
//! - [`gamma_hoyer`]: the expected Hoyer sparsity under the gamma hypothesis (closed form, Monte
//!   Carlo) and the maximum-likelihood gamma shape (SPEC §1.2).
//! - [`magnitude`]: log-scale histogram of weight magnitudes (CKA-SR's weight figures).
//! - [`accuracy`]: top-k correct counts from logits.
//! - [`stats`]: mean, standard deviation, Student-t intervals and Welch's test over seeds.

pub mod accuracy;
pub mod cka;
pub mod conv_structure;
pub mod gamma_hoyer;
pub mod group;
pub mod hoyer;
pub mod magnitude;
pub mod sparsity;
pub mod stats;

pub use sparsity::{LayerSparsity, SparsityReport};
