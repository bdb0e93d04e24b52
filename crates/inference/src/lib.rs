//! Sparse inference on the CPU: a pruned layer's weight as a CSR matrix
//! ([`csr::Csr`], the form `cargo xtask export` writes) and its product with a batch of inputs
//! ([`spmm::spmm`]), `Y = W·X` with `W` `[out, in]` sparse and `X` `[in, batch]` dense, the batch
//! as the inner, vectorised dimension, rows split over the compute pool's threads.
//!
//! A convolution is the same product after im2col: `W` `[out, in·kh·kw]` times the unfolded
//! input `[in·kh·kw, batch·positions]`. `cargo xtask bench` times the product against flex's
//! dense matmul, `sprs`, `faer` and PyTorch's `torch.sparse.mm` on the layers of LeNet-300-100
//! and LeNet-5 (docs/performance.md says which is used and why).

pub mod csr;
pub mod spmm;
pub mod timing;
