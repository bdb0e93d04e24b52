//! Top-k accuracy from logits (SPEC.md §3: top-1; top-5 for ≥ 100 classes).

use burn::tensor::{Int, Tensor};

/// Number of rows of `logits` (`[N, classes]`) whose label is among the `k` largest logits, as
/// a one-element tensor left on the device (so a training loop can accumulate it without a
/// synchronisation per step).
///
/// Ties are resolved by burn's sort order; with real-valued logits ties have probability 0.
pub fn top_k_hits(logits: Tensor<2>, labels: Tensor<1, Int>, k: usize) -> Tensor<1, Int> {
    let [n, classes] = logits.dims();
    let k = k.clamp(1, classes);
    let labels = labels.reshape([n, 1]);
    let hits = if k == 1 {
        logits.argmax(1).equal(labels).int()
    } else {
        let top = logits.sort_descending_with_indices(1).1.narrow(1, 0, k);
        top.equal(labels.expand([n, k])).int().sum_dim(1)
    };
    hits.sum()
}

/// [`top_k_hits`] read back to the host.
pub fn top_k_correct(logits: Tensor<2>, labels: Tensor<1, Int>, k: usize) -> usize {
    top_k_hits(logits, labels, k).into_scalar::<i64>() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn hand_computed_top1_and_top2() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.1f32, 0.7, 0.2, 0.5, 0.3, 0.2, 0.2, 0.3, 0.5], [3, 3]),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 1, 0], [3]), &device);
        assert_eq!(top_k_correct(logits.clone(), labels.clone(), 1), 1);
        assert_eq!(top_k_correct(logits.clone(), labels.clone(), 2), 2);
        assert_eq!(top_k_correct(logits, labels, 3), 3);
    }
}
