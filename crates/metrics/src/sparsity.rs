//! Unstructured sparsity, compression and theoretical speedup (SPEC.md §3).
//!
//! ```text
//! sparsity    = zeros / numel                       (weight tensors; or all trainable parameters)
//! compression = total parameters / non-zero parameters
//! speedup     = Σ_l numel_l·positions_l / Σ_l nnz_l·positions_l   (linear and conv layers)
//! ```
//!
//! `positions` is 1 for a linear layer and `H_out·W_out` for a conv layer, so the sums are the
//! dense and sparse multiply-accumulates per sample. Biases are counted in the compression ratio
//! (they are parameters) but not in FLOPs.

use serde::Serialize;
use sparselab_core::{ParamInfo, ParamTable};

/// Sparsity of one weight tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSparsity {
    /// Parameter path (`fc1.weight`).
    pub path: String,
    /// Elements.
    pub numel: usize,
    /// Exact zeros.
    pub zeros: usize,
    /// `zeros / numel`.
    pub sparsity: f64,
}

/// The sparsity metrics of a network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SparsityReport {
    /// Sparsity over weight tensors (linear and conv).
    pub weight_sparsity: f64,
    /// Sparsity over all trainable parameters.
    pub param_sparsity: f64,
    /// Total ÷ non-zero trainable parameters (`None` when every parameter is zero).
    pub compression: Option<f64>,
    /// Dense ÷ non-zero multiply-accumulates of linear and conv layers (`None` when no weight is
    /// non-zero).
    pub speedup: Option<f64>,
    /// Dense multiply-accumulates per sample.
    pub dense_macs: f64,
    /// Multiply-accumulates per sample of the non-zero weights.
    pub sparse_macs: f64,
    /// Trainable parameters.
    pub total: usize,
    /// Non-zero trainable parameters.
    pub nonzero: usize,
    /// Per weight tensor, in module order.
    pub layers: Vec<LayerSparsity>,
}

fn zeros(values: &[f32]) -> usize {
    values.iter().filter(|v| **v == 0.0).count()
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// The report for parameters `params` with host values `values` (same order). Buffers
/// (batch-norm running statistics) must not be passed: use [`ParamTable::trainable`].
pub fn report<'a>(
    params: impl IntoIterator<Item = &'a ParamInfo>,
    values: &[Vec<f32>],
) -> SparsityReport {
    let params: Vec<&ParamInfo> = params.into_iter().collect();
    assert_eq!(params.len(), values.len(), "one value vector per parameter");
    let (mut total, mut nonzero) = (0usize, 0usize);
    let (mut w_total, mut w_zeros) = (0usize, 0usize);
    let (mut dense_macs, mut sparse_macs) = (0.0f64, 0.0f64);
    let mut layers = Vec::new();
    for (p, v) in params.iter().zip(values) {
        let z = zeros(v);
        total += v.len();
        nonzero += v.len() - z;
        if p.is_weight() {
            w_total += v.len();
            w_zeros += z;
            dense_macs += (v.len() * p.positions) as f64;
            sparse_macs += ((v.len() - z) * p.positions) as f64;
            layers.push(LayerSparsity {
                path: p.path.clone(),
                numel: v.len(),
                zeros: z,
                sparsity: z as f64 / v.len().max(1) as f64,
            });
        }
    }
    SparsityReport {
        weight_sparsity: w_zeros as f64 / w_total.max(1) as f64,
        param_sparsity: (total - nonzero) as f64 / total.max(1) as f64,
        compression: ratio(total as f64, nonzero as f64),
        speedup: ratio(dense_macs, sparse_macs),
        dense_macs,
        sparse_macs,
        total,
        nonzero,
        layers,
    }
}

/// [`report`] over every trainable parameter of `table`, `values` in `table.trainable()` order.
pub fn report_table(table: &ParamTable, values: &[Vec<f32>]) -> SparsityReport {
    report(table.trainable(), values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::{ParamRole, WeightKind};

    fn p(role: ParamRole, shape: Vec<usize>, positions: usize) -> ParamInfo {
        ParamInfo {
            positions,
            ..ParamInfo::new(&format!("{role:?}"), role, shape)
        }
    }

    #[test]
    fn hand_computed_report() {
        // conv: 8 weights, 6 zeros, 4 output positions; linear: 4 weights, 1 zero; bias: 2, 1 zero.
        let conv = p(ParamRole::Weight(WeightKind::Conv), vec![2, 1, 2, 2], 4);
        let lin = p(ParamRole::Weight(WeightKind::Linear), vec![2, 2], 1);
        let bias = p(ParamRole::Bias, vec![2], 1);
        let values = vec![
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0],
            vec![0.0, 1.0, 1.0, 1.0],
            vec![0.0, 3.0],
        ];
        let r = report([&conv, &lin, &bias], &values);
        assert_eq!((r.total, r.nonzero), (14, 6));
        assert!((r.weight_sparsity - 7.0 / 12.0).abs() < 1e-12);
        assert!((r.param_sparsity - 8.0 / 14.0).abs() < 1e-12);
        assert_eq!(r.compression, Some(14.0 / 6.0));
        // dense MACs = 8·4 + 4 = 36, sparse = 2·4 + 3 = 11
        assert_eq!((r.dense_macs, r.sparse_macs), (36.0, 11.0));
        assert_eq!(r.speedup, Some(36.0 / 11.0));
        assert_eq!(r.layers.len(), 2);
        assert_eq!(r.layers[0].zeros, 6);
        assert_eq!(r.layers[1].sparsity, 0.25);
    }

    #[test]
    fn negative_zero_counts_as_zero_and_tiny_values_do_not() {
        let lin = p(ParamRole::Weight(WeightKind::Linear), vec![1, 3], 1);
        let r = report([&lin], &[vec![-0.0, 1e-30, 0.0]]);
        assert_eq!(r.layers[0].zeros, 2);
    }

    #[test]
    fn all_zero_network_has_no_finite_compression() {
        let lin = p(ParamRole::Weight(WeightKind::Linear), vec![1, 2], 1);
        let r = report([&lin], &[vec![0.0, 0.0]]);
        assert_eq!((r.compression, r.speedup), (None, None));
        assert_eq!(r.weight_sparsity, 1.0);
    }
}
