//! Group sparsity and structure identification (SPEC.md §1.4, §3).
//!
//! Groups are the input units of every weight tensor (the group lasso's groups): a linear
//! layer's input neurons (rows of burn's `[d_in, d_out]`), a conv layer's input channels
//! `W[:, c, :, :]`. A group counts as zero only if all its entries are exactly `0.0`.
//!
//! ```text
//! group sparsity          = zero groups / groups
//! weighted group sparsity = Σ_{zero g} |g| / Σ_g |g|
//! churn_e                 = #groups whose zero/non-zero state differs between epochs e−1 and e
//! identification epoch    = first epoch e with churn_{e'} = 0 for every e' > e
//! ```

use serde::Serialize;
use sparselab_core::{ParamInfo, WeightKind};

/// `(size, all zero)` of every input group of a weight tensor (host values in burn's layout).
pub fn input_groups(info: &ParamInfo, values: &[f32]) -> Vec<(usize, bool)> {
    match (info.weight_kind(), info.shape.as_slice()) {
        (Some(WeightKind::Linear), [d_in, d_out]) => (0..*d_in)
            .map(|j| {
                (
                    *d_out,
                    values[j * d_out..(j + 1) * d_out].iter().all(|v| *v == 0.0),
                )
            })
            .collect(),
        (Some(WeightKind::Conv), [c_out, c_in, kh, kw]) => {
            let kernel = kh * kw;
            (0..*c_in)
                .map(|c| {
                    let zero = (0..*c_out).all(|o| {
                        let start = (o * c_in + c) * kernel;
                        values[start..start + kernel].iter().all(|v| *v == 0.0)
                    });
                    (c_out * kernel, zero)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Group sparsity of a network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupReport {
    /// Number of groups.
    pub groups: usize,
    /// Number of all-zero groups.
    pub zero_groups: usize,
    /// Fraction of all-zero groups.
    pub sparsity: f64,
    /// Fraction of all-zero groups weighted by group size.
    pub weighted_sparsity: f64,
    /// Group sparsity per weight tensor `(path, fraction)`.
    pub layers: Vec<(String, f64)>,
    /// Zero pattern of every group, in parameter order (for churn).
    pub pattern: Vec<bool>,
}

/// Group report over the weight tensors among `params` (values in the same order).
pub fn group_report<'a>(
    params: impl IntoIterator<Item = (&'a ParamInfo, &'a [f32])>,
) -> GroupReport {
    let (mut size_all, mut size_zero) = (0usize, 0usize);
    let mut layers = Vec::new();
    let mut pattern = Vec::new();
    for (info, values) in params.into_iter().filter(|(i, _)| i.is_weight()) {
        let groups = input_groups(info, values);
        let zero = groups.iter().filter(|(_, z)| *z).count();
        layers.push((info.path.clone(), zero as f64 / groups.len().max(1) as f64));
        for (size, z) in groups {
            size_all += size;
            if z {
                size_zero += size;
            }
            pattern.push(z);
        }
    }
    let zero_groups = pattern.iter().filter(|z| **z).count();
    GroupReport {
        groups: pattern.len(),
        zero_groups,
        sparsity: zero_groups as f64 / pattern.len().max(1) as f64,
        weighted_sparsity: size_zero as f64 / size_all.max(1) as f64,
        layers,
        pattern,
    }
}

/// Number of groups whose zero/non-zero state differs between two patterns.
pub fn churn(previous: &[bool], current: &[bool]) -> usize {
    assert_eq!(
        previous.len(),
        current.len(),
        "patterns of the same network"
    );
    previous.iter().zip(current).filter(|(a, b)| a != b).count()
}

/// First epoch (1-based) after which the churn stays 0 to the end, given the churn of epochs
/// 1, 2, ... (`churn[e−1]` compares epoch e with epoch e−1; epoch 0 is the initial model).
/// `None` when the last epoch still changed the structure, and when no group was zero at any
/// epoch (`group_sparsity[e−1]` is epoch e's fraction of zero groups): a dense network has no
/// structure to identify.
pub fn identification_epoch(churn: &[usize], group_sparsity: &[f64]) -> Option<usize> {
    if churn.is_empty() || group_sparsity.iter().all(|g| *g == 0.0) {
        return None;
    }
    match churn.iter().rposition(|c| *c > 0) {
        None => Some(0),
        Some(last) if last + 1 == churn.len() => None,
        Some(last) => Some(last + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: WeightKind, shape: Vec<usize>) -> ParamInfo {
        ParamInfo::weight(kind, shape)
    }

    #[test]
    fn linear_groups_are_input_rows() {
        let i = info(WeightKind::Linear, vec![3, 2]);
        let g = input_groups(&i, &[0.0, 0.0, 1.0, 0.0, 0.0, -0.0]);
        assert_eq!(g, vec![(2, true), (2, false), (2, true)]);
    }

    #[test]
    fn conv_groups_are_input_channels() {
        // [out = 2, in = 2, 1, 2]: channel 0 = (o0: v0 v1, o1: v4 v5), channel 1 = (v2 v3, v6 v7).
        let i = info(WeightKind::Conv, vec![2, 2, 1, 2]);
        let g = input_groups(&i, &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(g, vec![(4, true), (4, false)]);
        let g = input_groups(&i, &[0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0]);
        assert_eq!(g, vec![(4, false), (4, true)]);
    }

    #[test]
    fn report_hand_computed() {
        let a = info(WeightKind::Linear, vec![2, 3]);
        let b = info(WeightKind::Linear, vec![3, 1]);
        let va = [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0];
        let vb = [0.0f32, 2.0, 0.0];
        let r = group_report([(&a, &va[..]), (&b, &vb[..])]);
        assert_eq!((r.groups, r.zero_groups), (5, 3));
        assert!((r.sparsity - 0.6).abs() < 1e-12);
        // zero sizes: 3 (a, group 0) + 1 + 1 (b) = 5 of 6 + 3 = 9
        assert!((r.weighted_sparsity - 5.0 / 9.0).abs() < 1e-12);
        assert_eq!(
            r.layers,
            vec![("w".to_string(), 0.5), ("w".to_string(), 2.0 / 3.0)]
        );
        assert_eq!(r.pattern, vec![true, false, true, false, true]);
    }

    #[test]
    fn churn_and_identification() {
        assert_eq!(churn(&[true, false, true], &[true, true, false]), 2);
        let some = [0.5; 5];
        assert_eq!(identification_epoch(&[5, 3, 0, 0, 0], &some), Some(2));
        assert_eq!(identification_epoch(&[0, 0], &some[..2]), Some(0));
        assert_eq!(identification_epoch(&[4, 0, 1], &some[..3]), None);
        assert_eq!(identification_epoch(&[4, 1, 0], &some[..3]), Some(2));
        // A run that never zeroes a group identifies nothing (it reported epoch 0 before).
        assert_eq!(identification_epoch(&[0, 0, 0], &[0.0; 3]), None);
        assert_eq!(identification_epoch(&[], &[]), None);
    }
}
