//! Models of sparselab (SPEC.md §4), one file each.
//!
//! Every model takes images `[N, C, H, W]`, returns logits, and can also return the output of
//! every block grouped by stage ([`Forward::features`], what CKA needs). Every model describes
//! its parameters as a [`ParamTable`](sparselab_core::ParamTable) (which tensors are linear or
//! conv weights, which is the classifier, how many output positions each conv has), so
//! regularizers, masks and metrics know what they act on.
//!
//! Members: [`mlp`] (`mlp-300-100`), [`mlp_rmda`] (`mlp-rmda`), [`lenet5`], [`resmlp`], [`resnet_cifar`] (`resnet-cifar`).
//! [`Model`] is the enum the runner trains; adding a model is a file plus one line in the
//! registry (`registry.rs`).

mod architecture;
pub mod flex_kernels;
pub mod lenet5;
pub mod mlp;
pub mod mlp_rmda;
mod registry;
pub mod resmlp;
pub mod resnet_cifar;
#[cfg(test)]
mod testing;

pub use architecture::{Architecture, Buildable, Forward, InputShape};
pub use registry::{Model, ModelBuilder, registry};
