//! The measured inference speedup of a trained network on this machine's CPU: the products of
//! its weight layers with a batch, dense (flex's matmul, what the forward pass runs) against
//! sparse (sparselab's CSR kernel, [`sparselab_inference::spmm`], on the run's actual weights),
//! summed over the layers, at batch 1 and 128. A convolution counts as its im2col product
//! (`[out, in·kh·kw]` times `[in·kh·kw, batch·positions]`); activations, pooling and biases,
//! the same work either way, are left out. The theoretical speedup stands beside it in the
//! tables: dense FLOPs ÷ non-zero FLOPs.

use crate::export::file::to_pytorch;
use burn::tensor::{Device, Tensor, TensorData};
use sparselab_core::ParamTable;
use sparselab_core::param::host_values;
use sparselab_inference::csr::Csr;
use sparselab_inference::spmm::spmm;
use sparselab_inference::timing::seconds_per_call;
use sparselab_models::Model;

/// The batch sizes measured.
pub const BATCHES: [usize; 2] = [1, 128];

/// Dense time ÷ sparse time of the weight layers of `model` at each of [`BATCHES`].
pub fn measured_speedups(model: &Model, table: &ParamTable) -> [f64; 2] {
    let weights: Vec<_> = table.weights().collect();
    let ids: Vec<_> = weights.iter().map(|p| p.id).collect();
    let values = host_values(model, &ids);
    let device = Device::flex();
    BATCHES.map(|batch| {
        let (mut dense, mut sparse) = (0.0, 0.0);
        for (info, v) in weights.iter().zip(&values) {
            let (shape, w) = to_pytorch(info, v);
            let (out, k) = (shape[0], w.len() / shape[0].max(1));
            let n = batch * info.positions.max(1);
            let x: Vec<f32> = (0..k * n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
            let w_t = Tensor::<2>::from_data(TensorData::new(w.clone(), [out, k]), &device);
            let x_t = Tensor::<2>::from_data(TensorData::new(x.clone(), [k, n]), &device);
            dense += seconds_per_call(5, 0.001, || {
                std::hint::black_box(w_t.clone().matmul(x_t.clone()));
            });
            let csr = Csr::from_dense(&w, out);
            let mut y = vec![0.0f32; out * n];
            sparse += seconds_per_call(5, 0.001, || spmm(&csr, &x, n, &mut y));
        }
        dense / sparse.max(1e-12)
    })
}
