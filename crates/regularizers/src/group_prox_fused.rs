//! The group lasso's proxes (SPEC §1.4) on the host, on the CPU backend:
//! [`group_prox_diagonal`](crate::prox::group_prox_diagonal) (ProxSSI's, the whole Newton solve
//! over the weight's f32 storage) and
//! [`group_soft_threshold`](crate::prox::group_soft_threshold) with a scalar θ (every other
//! proximal optimiser's: one pass for the norms, one to scale, nothing allocated per element).
//!
//! The tensor-op form runs about fifteen small tensor ops per Newton step on one value per group,
//! each an allocation and a dispatch, plus host round trips. This form does the same f32
//! operations in the same order, on plain vectors: group sums with [`Units::sums`] (flex's
//! `sum_dim` order), per-group scalars with [`Lane`]'s f32 operations, and burn's pair rules
//! (`max_pair(a, b)` takes `b` only when `a < b`, `min_pair` only when `b < a`). So the two forms
//! agree bit for bit (tested on random inputs). It applies to the layouts whose group sums
//! [`Units`] reproduces: linear weights and conv weights with kernels narrower than 4.

use crate::prox::TINY;
use burn::tensor::Tensor;
use sparselab_core::{Lane, Layout, Units, fused, widest};
use std::cell::RefCell;

/// burn's `max_pair` of one element.
fn max_pair(a: f32, b: f32) -> f32 {
    if a < b { b } else { a }
}

/// burn's `min_pair` of one element.
fn min_pair(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// The groups of `z` (its input units) when [`Units::sums`] adds them in flex's order and there
/// are any.
fn groups(z: &Tensor<4>, layout: Layout) -> Option<Units> {
    let units = Units::new(z.dims(), layout.input_axis()?);
    (units.exact() && !units.is_empty()).then_some(units)
}

/// The group prox in the metric `diag(d)` of `z` in place on flex, or `z` back (another backend,
/// a layout whose sums flex adds in SIMD lanes).
// `Err` hands `z` back by value once per parameter and step: boxing it would only add an
// allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn group_prox_diagonal_in_place(
    z: Tensor<4>,
    d: &Tensor<4>,
    layout: Layout,
    theta: f64,
    iterations: usize,
) -> Result<Tensor<4>, Tensor<4>> {
    let Some(units) = groups(&z, layout) else {
        return Err(z);
    };
    fused::update_in_place([z], [d], |[x], [d]| {
        solve(&units, x, d, theta, iterations);
    })
    .map(|[x]| x)
    .map_err(|[z]| z)
}

/// Group soft-thresholding `z_g ← max(0, ‖z_g‖ − θ√|g|)/max(‖z_g‖, TINY)·z_g` of `z` in place on
/// flex with a scalar θ, or `z` back (another backend, a layout whose sums flex adds in SIMD
/// lanes). The tensor form's f32 operations: `cut = θ·√|g|` rounded as `mul_scalar` rounds,
/// norms from [`Units::sums`] of the squares.
// `Err` hands `z` back by value once per parameter and step: boxing it would only add an
// allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn group_soft_threshold_in_place(
    z: Tensor<4>,
    layout: Layout,
    theta: f64,
) -> Result<Tensor<4>, Tensor<4>> {
    let Some(units) = groups(&z, layout) else {
        return Err(z);
    };
    fused::update_in_place([z], [], |[x], []| {
        let size = units.len() / units.count();
        // `zeros_like().add_scalar(θ).mul_scalar(√|g|)`: 0 + θ is θ for the θ > 0 that get here.
        let cut = (theta as f32).mul_scalar((size as f64).sqrt());
        let norms = SCRATCH.with_borrow_mut(|[squares, ..]| {
            squares.resize(x.len(), 0.0);
            widest!(
                squares
                    .iter_mut()
                    .zip(x.iter())
                    .for_each(|(q, z)| *q = *z * *z)
            );
            units.sums(squares)
        });
        let factor: Vec<f32> = norms
            .into_iter()
            .map(|n| {
                let n = n.sqrt();
                (n - cut).clamp_min(0.0) / n.clamp_min(TINY)
            })
            .collect();
        for (g, range) in units.runs() {
            let f = factor[g];
            x[range].iter_mut().for_each(|x| *x *= f);
        }
    })
    .map(|[x]| x)
    .map_err(|[z]| z)
}

thread_local! {
    /// Four work arrays of a weight's size, kept between calls: a fresh megabyte-sized allocation
    /// costs a page fault per page on every step.
    static SCRATCH: RefCell<[Vec<f32>; 4]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new()]) };
}

/// `x` holds `z` and becomes the prox; `d` the metric; groups are the units of `units`.
fn solve(units: &Units, x: &mut [f32], d: &[f32], theta: f64, iterations: usize) {
    SCRATCH.with_borrow_mut(|scratch| {
        for v in scratch.iter_mut() {
            v.resize(x.len(), 0.0);
        }
        let [dz, s, a, b] = scratch;
        solve_with(units, x, d, theta, iterations, [dz, s, a, b]);
    });
}

fn solve_with(
    units: &Units,
    x: &mut [f32],
    d: &[f32],
    theta: f64,
    iterations: usize,
    [dz, s, a, b]: [&mut [f32]; 4],
) {
    let size = units.len() / units.count();
    let t = theta * (size as f64).sqrt();
    for ((dz, s), (d, z)) in dz.iter_mut().zip(s.iter_mut()).zip(d.iter().zip(x.iter())) {
        *dz = *d * *z;
        *s = *dz * *dz;
    }
    let dz_norm: Vec<f32> = units.sums(s).into_iter().map(f32::sqrt).collect();
    for (square, z) in a.iter_mut().zip(x.iter()) {
        *square = *z * *z;
    }
    let z_norm: Vec<f32> = units
        .sums(a)
        .into_iter()
        .map(|v| v.sqrt().clamp_min(TINY))
        .collect();
    let d_max = d.iter().fold(f32::NEG_INFINITY, |m, v| max_pair(m, *v));
    let excess: Vec<f32> = dz_norm
        .iter()
        .map(|n| (*n - t as f32).clamp_min(1e-12))
        .collect();
    let lo: Vec<f32> = z_norm.iter().map(|n| (1.0 / n).mul_scalar(t)).collect();
    let hi: Vec<f32> = excess
        .iter()
        .map(|e| (1.0 / e).mul_scalar(t) * d_max)
        .collect();
    let mut mu: Vec<f32> = (0..units.count())
        .map(|g| {
            let start = (dz_norm[g] / z_norm[g] / excess[g]).mul_scalar(t);
            min_pair(max_pair(start, lo[g]), hi[g])
        })
        .collect();
    for _ in 0..iterations {
        for (g, range) in units.runs() {
            let mu = mu[g];
            let (a, b) = (&mut a[range.clone()], &mut b[range.clone()]);
            let (s, d) = (&s[range.clone()], &d[range]);
            for (((a, b), s), d) in a.iter_mut().zip(b.iter_mut()).zip(s).zip(d) {
                let inv = 1.0 / (*d + mu);
                *a = *s * inv * inv;
                *b = *a * inv;
            }
        }
        let (x_sq, curv) = (units.sums(a), units.sums(b));
        for (g, mu) in mu.iter_mut().enumerate() {
            let x_norm = x_sq[g].sqrt().clamp_min(TINY);
            let f = *mu * x_norm - t as f32;
            let df = (x_norm - *mu * curv[g] / x_norm).clamp_min(TINY);
            *mu = min_pair(max_pair(*mu - f / df, lo[g]), hi[g]);
        }
    }
    // Groups with ‖D z‖ ≤ t are exactly zero (their μ is meaningless and may not be finite).
    for (g, range) in units.runs() {
        let (x, dz, d) = (&mut x[range.clone()], &dz[range.clone()], &d[range]);
        if dz_norm[g] <= t as f32 {
            x.fill(0.0);
        } else {
            let mu = mu[g];
            for ((x, dz), d) in x.iter_mut().zip(dz).zip(d) {
                *x = *dz / (*d + mu);
            }
        }
    }
}
