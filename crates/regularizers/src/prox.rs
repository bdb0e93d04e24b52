//! Proximal operators shared by every regularizer and optimiser.
//!
//! `prox_{θψ}(z) = argmin_x ½‖x − z‖² + θ·ψ(x)`. For `ψ = ‖·‖₁` this is elementwise
//! soft-thresholding `S_θ(z) = sign(z)·max(|z| − θ, 0)` (SPEC.md, notation); for the group
//! lasso `ψ = Σ_g √|g|·‖z_g‖₂` it is group soft-thresholding
//! `z_g ← max(0, 1 − θ√|g|/‖z_g‖)·z_g` (§1.4). Thresholds may be a scalar or a per-element tensor
//! ([`Threshold`]), which is how reweighted and accumulated (dual-averaging) thresholds are
//! expressed. [`group_prox_diagonal`] solves the group prox in a diagonal metric (ProxSSI).

use crate::host::{TINY, group_prox_diagonal_in_place, group_soft_threshold_in_place};
use crate::threshold::Lazy;
pub use crate::threshold::Threshold;
use burn::tensor::{Tensor, TensorData};
use sparselab_core::widest;
use sparselab_core::{Layout, Weight, fused, units};

/// Elementwise soft-thresholding `S_θ(z) = sign(z)·max(|z| − θ, 0)`, computed as
/// `z − clamp(z, −θ, θ)`, which returns an exact `0.0` wherever `|z| ≤ θ`. On flex it runs as one
/// pass in place ([`fused`]), bit for bit the tensor-op form.
pub fn soft_threshold(z: Tensor<4>, theta: &Threshold) -> Tensor<4> {
    match theta {
        Threshold::Scalar(t) if *t <= 0.0 => z,
        Threshold::Scalar(t) => {
            let t32 = *t as f32;
            fused::update_in_place([z], [], |[z], []| {
                widest!(z.iter_mut().for_each(|x| *x = shrink(*x, t32)));
            })
            .map_or_else(|[z]| z.clone() - z.clamp(-*t, *t), |[z]| z)
        }
        Threshold::Tensor(_) | Threshold::Lazy(_) => {
            let lazy = theta.per_element().expect("a per-element threshold");
            let t = lazy.source.clone().expand(z.shape());
            fused::update_in_place([z], [&t], |[z], [t]| {
                lazy.for_chunks(
                    t,
                    #[inline(always)]
                    |range, theta| {
                        z[range]
                            .iter_mut()
                            .zip(theta)
                            .for_each(|(x, t)| *x = shrink(*x, *t));
                    },
                );
            })
            .map_or_else(
                |[z]| {
                    let t = Lazy { source: t, ..lazy }.into_tensor();
                    z.clone() - z.max_pair(t.clone().neg()).min_pair(t)
                },
                |[z]| z,
            )
        }
    }
}

/// `S_t(z)` of one element: the f32 operations of [`soft_threshold`]'s tensor forms,
/// `z − min(max(z, −t), t)`, where `max_pair`/`min_pair` (and `clamp`) take the bound only when it
/// is strictly beyond `z`.
#[inline(always)]
fn shrink(z: f32, t: f32) -> f32 {
    let lo = -t;
    let c = if z < lo { lo } else { z };
    let c = if t < c { t } else { c };
    z - c
}

/// `z ⊙ factor` for a per-group `factor` (one value per group of `layout`, broadcastable to `z`):
/// one pass in place on flex, else the tensor product. Both compute one f32 product per element.
fn scale_groups(z: Tensor<4>, factor: Tensor<4>, layout: Layout) -> Tensor<4> {
    let dims = z.dims();
    let (run, groups) = group_runs(dims, layout);
    match fused::flex_values(&factor) {
        Some(f) if f.len() == groups => fused::update_in_place([z], [], |[z], []| {
            for (g, range) in units::group_ranges(z.len(), run, groups) {
                z[range].iter_mut().for_each(|x| *x *= f[g]);
            }
        })
        .map_or_else(|[z]| z * factor, |[z]| z),
        _ => z * factor,
    }
}

/// The groups of [`group_sum`] in memory order: `(run, groups)` such that element `i` of a
/// contiguous weight of dims `dims` is in group `(i / run) % groups`.
fn group_runs(dims: [usize; 4], layout: Layout) -> (usize, usize) {
    match layout.input_axis() {
        Some(axis) => (dims[axis + 1..].iter().product(), dims[axis]),
        None => (1, dims.iter().product()),
    }
}

/// Groups of a weight for the group lasso: one per input unit (SPEC.md §1.4: a conv's input
/// channel `W[:, c, :, :]`, a linear layer's input neuron). Returns `(sum over each group of
/// x, broadcastable to the weight, group size |g|)`. A vector parameter is one group per element.
///
/// A linear weight `[d_in, d_out, 1, 1]` keeps each group in one contiguous row; on flex its sums
/// are taken on the host in `sum_dim`'s order ([`fused::run_sums`]), bit for bit the tensor op and
/// several times faster.
pub fn group_sum(x: Tensor<4>, layout: Layout) -> (Tensor<4>, usize) {
    let numel: usize = x.dims().iter().product();
    match layout.input_axis() {
        Some(axis) => {
            let groups = x.dims()[axis];
            let size = numel / groups.max(1);
            // A row is one contiguous run that `sum_dim(1)` adds in order only when the two
            // trailing axes have size 1 (a linear weight's canonical view always does).
            if layout == Layout::Linear
                && x.dims()[2..] == [1, 1]
                && let Some(sums) = fused::run_sums(&x, size)
            {
                let shape = [groups, 1, 1, 1];
                return (
                    Tensor::from_data(TensorData::new(sums, shape), &x.device()),
                    size,
                );
            }
            (Weight::sum_except(x, axis), size)
        }
        None => (x, 1),
    }
}

/// Euclidean norm of every group, broadcastable to the weight, and the group size.
pub fn group_norms(z: &Tensor<4>, layout: Layout) -> (Tensor<4>, usize) {
    let (sq, size) = group_sum(z.clone() * z.clone(), layout);
    (sq.sqrt(), size)
}

/// Group soft-thresholding: `z_g ← max(0, 1 − θ√|g|/‖z_g‖)·z_g`, exactly 0 when
/// `‖z_g‖ ≤ θ√|g|`. A per-element θ is averaged over each group.
///
/// With a scalar θ on flex it runs on the host ([`crate::host`]), bit for bit these
/// tensor ops.
pub fn group_soft_threshold(z: Tensor<4>, layout: Layout, theta: &Threshold) -> Tensor<4> {
    let z = match theta {
        Threshold::Scalar(t) if *t <= 0.0 => return z,
        Threshold::Scalar(t) => match group_soft_threshold_in_place(z, layout, *t) {
            Ok(x) => return x,
            Err(z) => z,
        },
        _ => z,
    };
    let (norms, size) = group_norms(&z, layout);
    let theta = match theta {
        Threshold::Scalar(t) => norms.zeros_like().add_scalar(*t),
        Threshold::Tensor(_) | Threshold::Lazy(_) => {
            let (_, t) = theta.clone().into_parts();
            let t = t.expect("a per-element threshold");
            let (sum, _) = group_sum(t.expand(z.shape()), layout);
            sum.div_scalar(size as f64)
        }
    };
    let cut = theta.mul_scalar((size as f64).sqrt());
    let factor = (norms.clone() - cut).clamp_min(0.0) / norms.clamp_min(TINY);
    scale_groups(z, factor, layout)
}

/// The group prox in the diagonal metric `D = diag(d)`, `d > 0` (ProxSSI, SPEC.md §1.4):
///
/// ```text
/// x = argmin ½(x − z)ᵀD(x − z) + θ·Σ_g √|g|·‖x_g‖
/// ```
///
/// `x_g = 0` if `‖D_g z_g‖ ≤ t = θ√|g|`; otherwise `x_i = d_i z_i/(d_i + μ)` where `μ > 0` solves
/// the secular equation `f(μ) = μ·‖x(μ)‖ = t`. f increases from 0 to `‖D_g z_g‖`, so the root is
/// unique and lies in `[t/‖z_g‖, t·max d/(‖D_g z_g‖ − t)]`. All groups are solved at once by
/// Newton's method (`iterations` steps, clamped to the bracket), started from the exact root for
/// a constant metric, `μ₀ = t·d̄/(‖D_g z_g‖ − t)` with `d̄ = ‖D_g z_g‖/‖z_g‖`, so a few steps
/// suffice. With `s_i = (d_i z_i)²`: `‖x‖² = Σ s_i/(d_i + μ)²`,
/// `f'(μ) = ‖x‖ − μ·Σ s_i/(d_i + μ)³ / ‖x‖`.
///
/// On flex the whole solve runs on the host ([`crate::host`]), bit for bit these
/// tensor ops.
pub fn group_prox_diagonal(
    z: Tensor<4>,
    d: Tensor<4>,
    layout: Layout,
    theta: f64,
    iterations: usize,
) -> Tensor<4> {
    if theta <= 0.0 {
        return z;
    }
    let z = match group_prox_diagonal_in_place(z, &d, layout, theta, iterations) {
        Ok(x) => return x,
        Err(z) => z,
    };
    let dz = d.clone() * z.clone();
    let s = dz.clone() * dz.clone();
    let (dz_sq, size) = group_sum(s.clone(), layout);
    let dz_norm = dz_sq.sqrt();
    let (z_norm, _) = group_norms(&z, layout);
    let z_norm = z_norm.clamp_min(TINY);
    let t = theta * (size as f64).sqrt();
    let d_max = d.clone().max().reshape([1, 1, 1, 1]);
    let excess = dz_norm.clone().sub_scalar(t).clamp_min(1e-12);
    let lo = z_norm.clone().recip().mul_scalar(t);
    let hi = excess.clone().recip().mul_scalar(t) * d_max;
    let mut mu = (dz_norm.clone() / z_norm / excess)
        .mul_scalar(t)
        .max_pair(lo.clone())
        .min_pair(hi.clone());
    let mut terms = [s.clone(), d.clone()];
    for _ in 0..iterations {
        terms = newton_terms(terms, &s, &d, &mu, layout);
        let [a, b] = &terms;
        let (x_sq, _) = group_sum(a.clone(), layout);
        let (curv, _) = group_sum(b.clone(), layout);
        let x_norm = x_sq.sqrt().clamp_min(TINY);
        let f = mu.clone() * x_norm.clone() - t;
        let df = (x_norm.clone() - mu.clone() * curv / x_norm).clamp_min(TINY);
        mu = (mu - f / df).max_pair(lo.clone()).min_pair(hi.clone());
    }
    // Groups with ‖D z‖ ≤ t are exactly zero (their μ is meaningless and may not be finite).
    let removed = dz_norm.lower_equal_elem(t);
    let (run, groups) = group_runs(z.dims(), layout);
    // Read back only where the fused form can run (flex), never a device round trip elsewhere.
    let host = fused::flex_values(&mu).and_then(|mu_host| {
        let removed_host = removed.clone().into_data().try_into_vec::<bool>().ok()?;
        Some((mu_host, removed_host))
    });
    if let Some((mu_host, removed_host)) =
        host.filter(|(m, r)| m.len() == groups && r.len() == groups)
        && let Ok([x]) = fused::update_in_place([dz.clone()], [&d], |[x], [d]| {
            for (g, range) in units::group_ranges(x.len(), run, groups) {
                for i in range {
                    x[i] = if removed_host[g] {
                        0.0
                    } else {
                        x[i] / (d[i] + mu_host[g])
                    };
                }
            }
        })
    {
        return x;
    }
    (dz / (d + mu)).mask_fill(removed.expand(z.shape()), 0.0)
}

/// The two sums of a Newton step of [`group_prox_diagonal`], per element: with
/// `inv = 1/(d + μ_g)`, `a = s·inv·inv` and `a·inv`. One pass on flex, written into `buffers`
/// (reused across steps, so they are written in place); tensor ops otherwise. Both forms do the
/// same f32 operations.
fn newton_terms(
    buffers: [Tensor<4>; 2],
    s: &Tensor<4>,
    d: &Tensor<4>,
    mu: &Tensor<4>,
    layout: Layout,
) -> [Tensor<4>; 2] {
    let (run, groups) = group_runs(s.dims(), layout);
    if let Some(mu_host) = fused::flex_values(mu).filter(|m| m.len() == groups)
        && let Ok(terms) = fused::update_in_place(buffers, [s, d], |[a, b], [s, d]| {
            for (g, range) in units::group_ranges(s.len(), run, groups) {
                let mu = mu_host[g];
                for i in range {
                    let inv = 1.0 / (d[i] + mu);
                    a[i] = s[i] * inv * inv;
                    b[i] = a[i] * inv;
                }
            }
        })
    {
        return terms;
    }
    let inv = (d.clone() + mu.clone()).recip();
    let a = s.clone() * inv.clone() * inv.clone();
    [a.clone(), a * inv]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{host, t4};
    use crate::threshold::Reciprocal;
    use burn::tensor::{Device, TensorData};
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn soft_threshold_hand_computed() {
        let z = t4(&[-3.0, -0.5, 0.0, 0.25, 1.0, 2.5]);
        assert_eq!(
            host(soft_threshold(z, &Threshold::Scalar(1.0))),
            vec![-2.0, 0.0, 0.0, 0.0, 0.0, 1.5]
        );
    }

    #[test]
    fn soft_threshold_per_element() {
        let z = t4(&[-3.0, -0.5, 2.0, 2.0]);
        let theta = Threshold::Tensor(t4(&[1.0, 0.1, 2.0, 0.5]));
        assert_eq!(host(soft_threshold(z, &theta)), vec![-2.0, -0.4, 0.0, 1.5]);
    }

    #[test]
    fn zero_threshold_is_identity() {
        let z = t4(&[-1.0, 0.5]);
        assert_eq!(host(soft_threshold(z, &Threshold::ZERO)), vec![-1.0, 0.5]);
    }

    proptest! {
        /// The prox output minimises ½(x − z)² + θ|x| (the objective is separable, so it is checked
        /// per element against nearby and far perturbations).
        #[test]
        fn soft_threshold_is_the_prox_of_l1(
            zs in proptest::collection::vec(-10.0f32..10.0, 1..16),
            theta in 0.0f32..5.0,
            deltas in proptest::collection::vec(-3.0f32..3.0, 16),
        ) {
            let x = host(soft_threshold(t4(&zs), &Threshold::Scalar(f64::from(theta))));
            let objective = |x: f32, z: f32| 0.5 * (x - z).powi(2) + theta * x.abs();
            for (i, (&xi, &zi)) in x.iter().zip(&zs).enumerate() {
                let best = objective(xi, zi);
                for d in [deltas[i % deltas.len()], 1e-3, -1e-3] {
                    prop_assert!(best <= objective(xi + d, zi) + 1e-4,
                        "x={xi} z={zi} θ={theta} d={d}");
                }
            }
        }
    }

    fn linear(values: &[f32], d_in: usize) -> Tensor<4> {
        Weight::from_tensor(Tensor::<2>::from_data(
            TensorData::new(values.to_vec(), [d_in, values.len() / d_in]),
            &Device::flex(),
        ))
        .value
    }

    proptest! {
        /// The host sums of a linear weight's groups equal the tensor op's bit for bit.
        #[test]
        fn linear_group_sums_equal_the_tensor_op_bit_for_bit(
            (d_in, values) in (1usize..20, 1usize..40).prop_flat_map(|(d_in, d_out)| (
                Just(d_in),
                proptest::collection::vec(-100.0f32..100.0, d_in * d_out),
            )),
        ) {
            let x = linear(&values, d_in);
            let bits = |t: Tensor<4>| host(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let (fused, size) = group_sum(x.clone(), Layout::Linear);
            let (ops, _) = fused::with_tensor_ops(|| group_sum(x, Layout::Linear));
            prop_assert_eq!(size, values.len() / d_in);
            prop_assert_eq!(bits(fused), bits(ops));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every prox of this module gives the same bits with its fused forms on and off, for
        /// conv, linear and vector layouts, scalar and per-element thresholds (the invariant of
        /// `sparselab_core::fused`).
        #[test]
        fn fused_proxes_equal_tensor_ops_bit_for_bit(
            (dims, z, d, t) in (1usize..4, 1usize..5, 1usize..3, 1usize..3).prop_flat_map(|(o, c, kh, kw)| {
                let n = o * c * kh * kw;
                (
                    Just([o, c, kh, kw]),
                    proptest::collection::vec(-2.0f32..2.0, n),
                    proptest::collection::vec(0.01f32..50.0, n),
                    proptest::collection::vec(0.0f32..1.0, n),
                )
            }),
            theta in 0.0f64..1.5,
        ) {
            let device = Device::flex();
            let tensor = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &device);
            let bits = |t: Tensor<4>| host(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let per_element = Threshold::Tensor(tensor(&t)).scale(theta).scale(1.7);
            let mapped = Threshold::Lazy(Lazy::mapped(tensor(&d), Arc::new(Reciprocal))).scale(theta);
            for layout in [Layout::Conv, Layout::Linear, Layout::Vector] {
                let all = |z: &Tensor<4>| {
                    vec![
                        soft_threshold(z.clone(), &Threshold::Scalar(theta)),
                        soft_threshold(z.clone(), &per_element),
                        soft_threshold(z.clone(), &mapped),
                        group_soft_threshold(z.clone(), layout, &Threshold::Scalar(theta)),
                        group_soft_threshold(z.clone(), layout, &per_element),
                        group_prox_diagonal(z.clone(), tensor(&d), layout, theta, 5),
                    ]
                };
                let fused = all(&tensor(&z));
                let ops = fused::with_tensor_ops(|| all(&tensor(&z)));
                for (i, (a, b)) in fused.into_iter().zip(ops).enumerate() {
                    prop_assert_eq!(bits(a), bits(b), "{:?} prox {}", layout, i);
                }
            }
        }
    }

    #[test]
    fn group_shapes_for_linear_and_conv() {
        // Linear [d_in = 2, d_out = 3]: groups are input neurons (rows), size 3.
        let (sum, size) = group_sum(linear(&[1., 2., 3., 4., 5., 6.], 2), Layout::Linear);
        assert_eq!((sum.dims(), size), ([2, 1, 1, 1], 3));
        assert_eq!(host(sum), vec![6.0, 15.0]);
        // Conv [out = 2, in = 3, 1, 2]: groups are input channels W[:, c, :, :], size 2·1·2 = 4.
        let conv = Tensor::<4>::from_data(
            TensorData::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [2, 3, 1, 2]),
            &Device::flex(),
        );
        let (sum, size) = group_sum(conv, Layout::Conv);
        assert_eq!((sum.dims(), size), ([1, 3, 1, 1], 4));
        // channel 0: 0+1+6+7, channel 1: 2+3+8+9, channel 2: 4+5+10+11
        assert_eq!(host(sum), vec![14.0, 22.0, 30.0]);
    }

    #[test]
    fn group_soft_threshold_zeroes_small_groups_and_scales_the_rest() {
        // Groups (rows of [2, 2]): (3, 4) with norm 5, (0.3, 0.4) with norm 0.5; θ√2 = 1.
        let z = linear(&[3.0, 4.0, 0.3, 0.4], 2);
        let out = host(group_soft_threshold(
            z,
            Layout::Linear,
            &Threshold::Scalar(1.0 / 2f64.sqrt()),
        ));
        let scale = 1.0 - 1.0 / 5.0;
        assert!(
            (out[0] - 3.0 * scale).abs() < 1e-6 && (out[1] - 4.0 * scale).abs() < 1e-6,
            "{out:?}"
        );
        assert_eq!(&out[2..], &[0.0, 0.0]);
    }

    /// An all-zero group stays exactly zero (regression test: a denominator floor that rounded
    /// to 0 in f32 once produced 0/0 = NaN and diverged training).
    #[test]
    fn zero_groups_stay_zero_not_nan() {
        let z = linear(&[0.0, 0.0, 3.0, 4.0], 2);
        let plain = host(group_soft_threshold(
            z.clone(),
            Layout::Linear,
            &Threshold::Scalar(0.1),
        ));
        assert_eq!(&plain[..2], &[0.0, 0.0]);
        assert!(plain.iter().all(|v| v.is_finite()));
        let weighted = host(group_prox_diagonal(
            z.clone(),
            z.ones_like(),
            Layout::Linear,
            0.1,
            12,
        ));
        assert_eq!(&weighted[..2], &[0.0, 0.0]);
        assert!(weighted.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn diagonal_group_prox_with_identity_metric_is_the_group_prox() {
        let z = linear(&[3.0, 4.0, 0.3, 0.4, -1.0, 2.0], 3);
        let theta = 0.5;
        let plain = host(group_soft_threshold(
            z.clone(),
            Layout::Linear,
            &Threshold::Scalar(theta),
        ));
        let weighted = host(group_prox_diagonal(
            z.clone(),
            z.ones_like(),
            Layout::Linear,
            theta,
            crate::group_lasso::NEWTON_STEPS,
        ));
        for (a, b) in plain.iter().zip(&weighted) {
            assert!((a - b).abs() < 1e-5, "{plain:?} vs {weighted:?}");
        }
    }

    /// The weighted prox satisfies its optimality conditions: for a kept group
    /// `D(x − z) + t·x/‖x‖ = 0`; for a zeroed group `‖D z‖ ≤ t`.
    #[test]
    fn diagonal_group_prox_satisfies_optimality() {
        let z = [0.8f32, -1.5, 0.3, 0.05, 0.02, -0.04, 2.0, 1.0, -0.5];
        let d = [1.0f32, 30.0, 0.02, 5.0, 0.5, 1.0, 0.7, 2.0, 90.0];
        let theta = 0.3f64;
        let x = host(group_prox_diagonal(
            linear(&z, 3),
            linear(&d, 3),
            Layout::Linear,
            theta,
            crate::group_lasso::NEWTON_STEPS,
        ));
        let t = theta as f32 * 3f32.sqrt();
        for g in 0..3 {
            let r = g * 3..g * 3 + 3;
            let x_norm = x[r.clone()].iter().map(|v| v * v).sum::<f32>().sqrt();
            if x_norm == 0.0 {
                let dz_norm = r.clone().map(|i| (d[i] * z[i]).powi(2)).sum::<f32>().sqrt();
                assert!(
                    dz_norm <= t * 1.0001,
                    "group {g} zeroed but ‖Dz‖ = {dz_norm} > t = {t}"
                );
            } else {
                for i in r {
                    let residual = d[i] * (x[i] - z[i]) + t * x[i] / x_norm;
                    assert!(
                        residual.abs() < 1e-4,
                        "group {g}, i {i}: residual {residual}"
                    );
                }
            }
        }
        assert!(
            x[3..6].iter().all(|v| *v == 0.0),
            "the small group is removed: {x:?}"
        );
    }

    proptest! {
        /// Group soft-thresholding minimises ½‖x − z‖² + θ Σ √|g| ‖x_g‖ (checked against random
        /// perturbations of the output).
        #[test]
        fn group_soft_threshold_is_the_group_lasso_prox(
            zs in proptest::collection::vec(-3.0f32..3.0, 6),
            theta in 0.0f64..2.0,
            deltas in proptest::collection::vec(-0.5f32..0.5, 6),
            scale in 1e-3f32..1.0,
        ) {
            let x = host(group_soft_threshold(linear(&zs, 2), Layout::Linear, &Threshold::Scalar(theta)));
            let objective = |x: &[f32]| {
                let fit: f32 = x.iter().zip(&zs).map(|(a, b)| 0.5 * (a - b).powi(2)).sum();
                let pen: f32 = x.chunks(3).map(|g| g.iter().map(|v| v * v).sum::<f32>().sqrt()).sum();
                fit + theta as f32 * 3f32.sqrt() * pen
            };
            let perturbed: Vec<f32> = x.iter().zip(&deltas).map(|(a, d)| a + d * scale).collect();
            prop_assert!(objective(&x) <= objective(&perturbed) + 1e-4);
        }
    }
}
