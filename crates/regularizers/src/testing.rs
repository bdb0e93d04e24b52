//! Helpers shared by this crate's tests.

use burn::tensor::{Device, Tensor, TensorData};

/// `values` as a `[n, 1, 1, 1]` flex tensor.
pub(crate) fn t4(values: &[f32]) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len(), 1, 1, 1]),
        &Device::flex(),
    )
}

/// The f32 values of `t`.
pub(crate) fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 values")
}
