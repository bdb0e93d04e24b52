//! Test helpers: drive one optimiser over a hand-written gradient sequence.

use burn::optim::Optimizer;
use burn::tensor::{Device, Tensor, TensorData};

/// A rank-2 `[1, n]` tensor on the CPU backend (rank 2 = a linear weight).
pub fn tensor(values: &[f32]) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [1, values.len()]),
        &Device::flex(),
    )
}

/// Host values of a tensor.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 tensor")
}

/// Runs `opt` from `w0` over `grads` (one slice per step) with learning rates `lrs`.
pub fn run<O: Optimizer>(opt: &O, w0: &[f32], grads: &[&[f32]], lrs: &[f64]) -> Vec<f32> {
    assert_eq!(grads.len(), lrs.len());
    let mut w = tensor(w0);
    let mut state = None;
    for (g, &lr) in grads.iter().zip(lrs) {
        let (next, s) = opt.step(lr, w, tensor(g), state);
        w = next;
        state = s;
    }
    host(w)
}

/// Elementwise `|a − b| ≤ tol`.
#[track_caller]
pub fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?} (tol {tol})");
    }
}

/// An ℓ1 regularizer of strength `lambda`.
pub fn l1(lambda: f64) -> std::sync::Arc<dyn sparselab_regularizers::Regularizer> {
    std::sync::Arc::new(sparselab_regularizers::l1::L1::new(lambda))
}

/// Soft-thresholding on the host, for expected values.
pub fn soft(z: f32, theta: f32) -> f32 {
    z.signum() * (z.abs() - theta).max(0.0)
}
