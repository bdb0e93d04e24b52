//! Hoyer sparsity (SPEC.md §1.2, §3).
//!
//! ```text
//! H(x) = (√n − ‖x‖₁ / (‖x‖₂ + 1e-8)) / (√n − 1)   ∈ [0, 1]
//! ```
//!
//! 0 when all entries are equal in magnitude, 1 for a single non-zero. An all-zero vector counts
//! as fully sparse (H = 1; the raw formula would give √n/(√n−1) > 1) and a vector of length 1 as
//! H = 0. Per row with `n` = fan-in (the incoming weights of one output unit); a layer's value is
//! the mean over its rows; the network's is the mean over layers weighted by parameter count.

use sparselab_core::{ParamInfo, WeightKind};

/// Hoyer sparsity of one vector.
pub fn hoyer(x: &[f32]) -> f64 {
    let n = x.len();
    if n <= 1 {
        return 0.0;
    }
    let l1: f64 = x.iter().map(|v| f64::from(v.abs())).sum();
    if l1 == 0.0 {
        return 1.0;
    }
    let l2: f64 = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let sqrt_n = (n as f64).sqrt();
    ((sqrt_n - l1 / (l2 + 1e-8)) / (sqrt_n - 1.0)).clamp(0.0, 1.0)
}

/// The incoming weight vector of every output unit of a weight tensor (host values in burn's
/// layout: linear `[d_in, d_out]`, conv `[c_out, c_in, kh, kw]`).
pub fn rows(info: &ParamInfo, values: &[f32]) -> Vec<Vec<f32>> {
    match (info.weight_kind(), info.shape.as_slice()) {
        (Some(WeightKind::Linear), [d_in, d_out]) => (0..*d_out)
            .map(|j| (0..*d_in).map(|i| values[i * d_out + j]).collect())
            .collect(),
        (Some(WeightKind::Conv), [c_out, ..]) => {
            let fan_in = values.len() / c_out;
            values.chunks(fan_in).map(<[f32]>::to_vec).collect()
        }
        _ => vec![values.to_vec()],
    }
}

/// Mean Hoyer sparsity over the rows of one weight tensor.
pub fn layer_hoyer(info: &ParamInfo, values: &[f32]) -> f64 {
    let rows = rows(info, values);
    rows.iter().map(|r| hoyer(r)).sum::<f64>() / rows.len().max(1) as f64
}

/// Network Hoyer sparsity: layer values weighted by parameter count, over weight tensors.
pub fn network_hoyer<'a>(params: impl IntoIterator<Item = (&'a ParamInfo, &'a [f32])>) -> f64 {
    weighted_hoyer(
        params
            .into_iter()
            .filter(|(i, _)| i.is_weight())
            .map(|(info, values)| (layer_hoyer(info, values), values.len())),
    )
}

/// Network Hoyer sparsity from `(layer value, parameter count)` pairs already computed.
pub fn weighted_hoyer(layers: impl IntoIterator<Item = (f64, usize)>) -> f64 {
    let (sum, count) = layers
        .into_iter()
        .fold((0.0, 0usize), |(s, c), (h, n)| (s + h * n as f64, c + n));
    sum / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn special_cases() {
        assert!(hoyer(&[2.0; 16]).abs() < 1e-6);
        assert!(hoyer(&[-1.0, 1.0, 1.0, -1.0]).abs() < 1e-6);
        assert!((hoyer(&[0.0, 0.0, 5.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(hoyer(&[0.0; 8]), 1.0);
        assert_eq!(hoyer(&[3.0]), 0.0);
    }

    #[test]
    fn hand_computed_value() {
        // x = (3, 4): ‖x‖₁ = 7, ‖x‖₂ = 5, n = 2 → (√2 − 1.4)/(√2 − 1)
        let expected = (2f64.sqrt() - 1.4) / (2f64.sqrt() - 1.0);
        assert!((hoyer(&[3.0, 4.0]) - expected).abs() < 1e-6);
    }

    #[test]
    fn linear_rows_are_fan_in_columns() {
        let info = ParamInfo::weight(WeightKind::Linear, vec![3, 2]);
        // [d_in=3, d_out=2]: output 0 sees (1, 3, 5), output 1 sees (2, 4, 6).
        assert_eq!(
            rows(&info, &[1., 2., 3., 4., 5., 6.]),
            vec![vec![1., 3., 5.], vec![2., 4., 6.]]
        );
        // Output 0 one-hot (H=1), output 1 constant (H=0) → layer mean 0.5.
        let v = [0., 1., 0., 1., 7., 1.];
        assert!((layer_hoyer(&info, &v) - 0.5).abs() < 1e-6);
        let n = network_hoyer([(&info, &v[..])]);
        assert!((n - 0.5).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn hoyer_is_in_unit_interval_and_scale_invariant(
            x in proptest::collection::vec(-100.0f32..100.0, 2..64),
            scale in 0.01f32..100.0,
        ) {
            let h = hoyer(&x);
            prop_assert!((0.0..=1.0).contains(&h));
            let scaled: Vec<f32> = x.iter().map(|v| v * scale).collect();
            if x.iter().any(|v| v.abs() > 1e-3) {
                prop_assert!((hoyer(&scaled) - h).abs() < 1e-4);
            }
        }
    }
}
