//! Per-layer density allocation for a global sparsity target (SPEC.md §2).
//!
//! `uniform`: every layer at density `1 − S`. `erk` (Erdős–Rényi-Kernel, Evci et al. 2020):
//!
//! ```text
//! density_l = ε · (n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)   (conv)
//! density_l = ε · (n_in + n_out) / (n_in · n_out)                         (linear)
//! ```
//!
//! with ε chosen so that `Σ density_l · size_l = (1 − S) · Σ size_l`; a layer whose density would
//! exceed 1 is made dense and ε is solved again over the remaining layers.

use serde::{Deserialize, Serialize};
use sparselab_core::{ParamInfo, WeightKind};

/// How densities are spread over layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Same density everywhere.
    Uniform,
    /// Erdős–Rényi-Kernel: density ∝ (n_in + n_out + k_h + k_w)/(n_in·n_out·k_h·k_w).
    Erk,
}

/// ERK's unnormalised density of one layer.
fn erk_score(p: &ParamInfo) -> f64 {
    let (n_in, n_out, kh, kw) = p.fans().expect("ERK applies to weight tensors");
    let (n_in, n_out, kh, kw) = (n_in as f64, n_out as f64, kh as f64, kw as f64);
    match p.weight_kind() {
        Some(WeightKind::Conv) => (n_in + n_out + kh + kw) / (n_in * n_out * kh * kw),
        _ => (n_in + n_out) / (n_in * n_out),
    }
}

/// Densities (fraction kept, one per layer) for global sparsity `sparsity`.
pub fn densities(layers: &[&ParamInfo], sparsity: f64, distribution: Distribution) -> Vec<f64> {
    let target = 1.0 - sparsity;
    match distribution {
        Distribution::Uniform => vec![target; layers.len()],
        Distribution::Erk => {
            let sizes: Vec<f64> = layers.iter().map(|p| p.numel() as f64).collect();
            let scores: Vec<f64> = layers.iter().map(|p| erk_score(p)).collect();
            let mut dense = vec![false; layers.len()];
            loop {
                // Budget left for the sparse layers after the dense ones take all their weights.
                let budget: f64 = target * sizes.iter().sum::<f64>()
                    - sizes
                        .iter()
                        .zip(&dense)
                        .filter(|(_, d)| **d)
                        .map(|(s, _)| s)
                        .sum::<f64>();
                let weighted: f64 = (0..layers.len())
                    .filter(|&i| !dense[i])
                    .map(|i| scores[i] * sizes[i])
                    .sum();
                let eps = if weighted > 0.0 {
                    budget / weighted
                } else {
                    0.0
                };
                let newly_dense: Vec<usize> = (0..layers.len())
                    .filter(|&i| !dense[i] && eps * scores[i] > 1.0)
                    .collect();
                if newly_dense.is_empty() {
                    return (0..layers.len())
                        .map(|i| {
                            if dense[i] {
                                1.0
                            } else {
                                (eps * scores[i]).max(0.0)
                            }
                        })
                        .collect();
                }
                for i in newly_dense {
                    dense[i] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(kind: WeightKind, shape: Vec<usize>) -> ParamInfo {
        ParamInfo::weight(kind, shape)
    }

    fn total_kept(layers: &[&ParamInfo], d: &[f64]) -> f64 {
        layers
            .iter()
            .zip(d)
            .map(|(p, d)| p.numel() as f64 * d)
            .sum()
    }

    #[test]
    fn erk_meets_the_global_budget_and_favours_small_layers() {
        let a = layer(WeightKind::Linear, vec![784, 300]);
        let b = layer(WeightKind::Linear, vec![300, 100]);
        let c = layer(WeightKind::Linear, vec![100, 10]);
        let layers = [&a, &b, &c];
        let n: f64 = layers.iter().map(|p| p.numel() as f64).sum();
        for s in [0.5, 0.8, 0.9, 0.95, 0.98] {
            let d = densities(&layers, s, Distribution::Erk);
            assert!(
                (total_kept(&layers, &d) - (1.0 - s) * n).abs() < 1e-6 * n,
                "s={s}"
            );
            assert!(d[0] < d[1] && d[1] <= d[2], "{d:?}");
            assert!(d.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }

    #[test]
    fn erk_hand_computed_two_layers() {
        // Scores: (2+2)/4 = 1 and (4+2)/8 = 0.75 for sizes 4 and 8; target density 0.5 → 6 kept:
        // ε(1·4 + 0.75·8) = 6 → ε = 0.6; densities 0.6 and 0.45.
        let a = layer(WeightKind::Linear, vec![2, 2]);
        let b = layer(WeightKind::Linear, vec![4, 2]);
        let d = densities(&[&a, &b], 0.5, Distribution::Erk);
        assert!(
            (d[0] - 0.6).abs() < 1e-12 && (d[1] - 0.45).abs() < 1e-12,
            "{d:?}"
        );
    }

    #[test]
    fn erk_caps_layers_at_dense_and_redistributes() {
        // A tiny layer would get density > 1 at low sparsity: it goes dense, the rest absorbs.
        let small = layer(WeightKind::Linear, vec![2, 2]);
        let big = layer(WeightKind::Linear, vec![100, 100]);
        let layers = [&small, &big];
        let d = densities(&layers, 0.5, Distribution::Erk);
        assert_eq!(d[0], 1.0);
        let n = (4 + 10_000) as f64;
        assert!((total_kept(&layers, &d) - 0.5 * n).abs() < 1e-6);
    }

    #[test]
    fn erk_conv_uses_kernel_terms() {
        let conv = layer(WeightKind::Conv, vec![16, 8, 3, 3]);
        assert!((erk_score(&conv) - (8.0 + 16.0 + 3.0 + 3.0) / (8.0 * 16.0 * 9.0)).abs() < 1e-15);
        let lin = layer(WeightKind::Linear, vec![8, 16]);
        assert!((erk_score(&lin) - 24.0 / 128.0).abs() < 1e-15);
    }

    #[test]
    fn uniform_is_flat() {
        let a = layer(WeightKind::Linear, vec![3, 3]);
        let d = densities(&[&a, &a], 0.8, Distribution::Uniform);
        assert!(
            d.len() == 2 && d.iter().all(|x| (x - 0.2).abs() < 1e-12),
            "{d:?}"
        );
    }
}
