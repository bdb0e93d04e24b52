//! Structured sparsity of conv weights: the granularities of the reweighted ℓ1's `kernel` and
//! `channel` modes (SPEC.md §1.1), so claim S4 can be read off a run.
//!
//! Over every conv weight `W[o, i, kh, kw]` of a network (linear weights have no such structure
//! and are left out), a kernel `W[o, i, :, :]` or an output filter `W[o, :, :, :]` counts as zero
//! only if all its entries are exactly `0.0`:
//!
//! ```text
//! kernel sparsity = zero kernels / kernels          filter sparsity = zero filters / filters
//! ```
//!
//! Both are pooled over layers (a count over all kernels, not a mean of per-layer fractions), so
//! a layer weighs by its number of kernels or filters.

use serde::Serialize;
use sparselab_core::{ParamInfo, WeightKind};

/// Zero kernels and filters of a network's conv weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ConvStructure {
    /// Fraction of all-zero `(out, in)` kernels.
    pub kernel_sparsity: f64,
    /// Fraction of all-zero output filters.
    pub filter_sparsity: f64,
}

/// The structured sparsity of the conv weights among `params` (host values in burn's layout),
/// or `None` for a network without conv weights.
pub fn conv_structure<'a>(
    params: impl IntoIterator<Item = (&'a ParamInfo, &'a [f32])>,
) -> Option<ConvStructure> {
    let (mut kernels, mut zero_kernels, mut filters, mut zero_filters) = (0, 0, 0, 0);
    for (info, values) in params {
        let (Some(WeightKind::Conv), [c_out, c_in, kh, kw]) =
            (info.weight_kind(), info.shape.as_slice())
        else {
            continue;
        };
        let (kernel, filter) = (kh * kw, c_in * kh * kw);
        let zero = |chunk: &[f32]| chunk.iter().all(|v| *v == 0.0);
        kernels += c_out * c_in;
        zero_kernels += values.chunks_exact(kernel).filter(|k| zero(k)).count();
        filters += c_out;
        zero_filters += values.chunks_exact(filter).filter(|f| zero(f)).count();
    }
    (kernels > 0).then(|| ConvStructure {
        kernel_sparsity: zero_kernels as f64 / kernels as f64,
        filter_sparsity: zero_filters as f64 / filters as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::ParamRole;

    fn param(path: &str, shape: &[usize]) -> ParamInfo {
        let kind = match shape.len() {
            4 => WeightKind::Conv,
            _ => WeightKind::Linear,
        };
        ParamInfo::new(path, ParamRole::Weight(kind), shape.to_vec())
    }

    /// A conv `[out = 2, in = 2, 1, 2]` with kernel (0, 1) and the whole filter 1 zero: 3 of 4
    /// kernels and 1 of 2 filters; the linear weight beside it changes nothing.
    #[test]
    fn counts_zero_kernels_and_filters_of_conv_weights_only() {
        let conv = param("conv.weight", &[2, 2, 1, 2]);
        let linear = param("fc.weight", &[2, 2]);
        let w = [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let s = conv_structure([(&conv, &w[..]), (&linear, &[0.0; 4][..])]).expect("a conv");
        assert_eq!(s.kernel_sparsity, 3.0 / 4.0);
        assert_eq!(s.filter_sparsity, 1.0 / 2.0);
    }

    /// Layers pool by count: one zero kernel of 1 in a small conv and none of 4 in a larger one
    /// give 1 / 5, not the mean of 1 and 0.
    #[test]
    fn layers_weigh_by_their_number_of_kernels() {
        let small = param("a.weight", &[1, 1, 1, 1]);
        let large = param("b.weight", &[2, 2, 1, 1]);
        let s = conv_structure([(&small, &[0.0][..]), (&large, &[1.0; 4][..])]).expect("convs");
        assert_eq!(s.kernel_sparsity, 1.0 / 5.0);
        assert_eq!(s.filter_sparsity, 1.0 / 3.0);
    }

    /// An entry of −0.0 is zero, a subnormal is not; without conv weights there is no value.
    #[test]
    fn special_cases() {
        let conv = param("c.weight", &[1, 2, 1, 1]);
        let s = conv_structure([(&conv, &[-0.0, f32::MIN_POSITIVE / 2.0][..])]).expect("a conv");
        assert_eq!((s.kernel_sparsity, s.filter_sparsity), (0.5, 0.0));
        let linear = param("fc.weight", &[2, 2]);
        assert_eq!(conv_structure([(&linear, &[0.0; 4][..])]), None);
    }
}
