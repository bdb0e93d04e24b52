//! The regularizers' passes on the host, in place on the CPU backend: the speed layer behind
//! [`crate::prox`] and [`crate::reweighted_l1`], which no method author needs to open. Here the
//! group lasso's proxes (SPEC §1.4):
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
//! [`Units`] reproduces: linear weights and conv weights with kernels narrower than 4. A linear
//! weight's groups are runs of consecutive elements, and their Newton solve runs sixteen groups
//! at a time in SIMD lanes ([`lanes`]), with the per-group and per-element operations shared
//! by both ([`newton`]).

use burn::tensor::Tensor;
use sparselab_core::units::sum_runs_of;
use sparselab_core::{Lane, Layout, Units, fused, widest};
use std::cell::RefCell;

mod lanes;
mod magnitudes;
mod newton;

pub(crate) use magnitudes::moving_average_in_place;
pub(crate) use newton::TINY;
use newton::{Root, max_pair, newton_terms, settled, write_group};

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
        let norms = if let Some(run) = units.folded_runs() {
            // Each group's squares added in order as they are read (no array of squares).
            let mut sums = vec![0.0f32; units.count()];
            sum_runs_of(x, run, &mut sums, |z| z * z);
            sums
        } else {
            SCRATCH.with_borrow_mut(|[squares, ..]| {
                squares.resize(x.len(), 0.0);
                widest!(
                    squares
                        .iter_mut()
                        .zip(x.iter())
                        .for_each(|(q, z)| *q = *z * *z)
                );
                units.sums(squares)
            })
        };
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
    /// Three work arrays of a weight's size ([`solve_with`]), kept between calls: a fresh
    /// megabyte-sized allocation costs a page fault per page on every step.
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// `x` holds `z` and becomes the prox; `d` the metric; groups are the units of `units`. Groups
/// that are runs of consecutive elements (linear weights) are solved sixteen at a time in SIMD
/// lanes ([`lanes`]); other layouts one Newton pass over the whole weight at a
/// time ([`solve_with`]). Both do the same f32 operations.
fn solve(units: &Units, x: &mut [f32], d: &[f32], theta: f64, iterations: usize) {
    let t = theta * ((units.len() / units.count()) as f64).sqrt();
    let d_max = largest(d);
    if let Some(run) = units.folded_runs() {
        return lanes::solve_runs(x, d, run, (t, d_max), iterations);
    }
    SCRATCH.with_borrow_mut(|scratch| {
        for v in scratch.iter_mut() {
            v.resize(x.len(), 0.0);
        }
        let [s, a, b] = scratch;
        solve_with(units, x, d, (t, d_max), iterations, [s, a, b]);
    });
}

/// `max d` as `d.max()` gives it: a left fold of `max_pair` from −∞, which skips NaN. Taken in
/// sixteen lanes, which gives the same value unless the maximum is a zero (then the fold decides
/// between +0 and −0, and runs).
fn largest(d: &[f32]) -> f32 {
    let fold = |d: &[f32]| d.iter().fold(f32::NEG_INFINITY, |m, v| max_pair(m, *v));
    let lanes = widest!({
        let mut lanes = [f32::NEG_INFINITY; 16];
        let chunks = d.chunks_exact(16);
        let rest = fold(chunks.remainder());
        for chunk in chunks {
            for (m, v) in lanes.iter_mut().zip(chunk) {
                *m = max_pair(*m, *v);
            }
        }
        lanes.iter().fold(rest, |m, v| max_pair(m, *v))
    });
    if lanes == 0.0 { fold(d) } else { lanes }
}

fn solve_with(
    units: &Units,
    x: &mut [f32],
    d: &[f32],
    (t, d_max): (f64, f32),
    iterations: usize,
    [s, a, b]: [&mut [f32]; 3],
) {
    for (s, (d, z)) in s.iter_mut().zip(d.iter().zip(x.iter())) {
        let dz = *d * *z;
        *s = dz * dz;
    }
    let dz_norm: Vec<f32> = units.sums(s).into_iter().map(f32::sqrt).collect();
    for (square, z) in a.iter_mut().zip(x.iter()) {
        *square = *z * *z;
    }
    let mut roots: Vec<Root> = (units.sums(a).into_iter().zip(&dz_norm))
        .map(|(z_squares, dz_norm)| Root::start(*dz_norm, z_squares, t, d_max))
        .collect();
    for _ in 0..iterations {
        for (g, range) in units.runs() {
            let mu = roots[g].mu;
            let (a, b) = (&mut a[range.clone()], &mut b[range.clone()]);
            let (s, d) = (&s[range.clone()], &d[range]);
            for (((a, b), s), d) in a.iter_mut().zip(b.iter_mut()).zip(s).zip(d) {
                (*a, *b) = newton_terms(*s, *d, mu);
            }
        }
        let (x_sq, curv) = (units.sums(a), units.sums(b));
        let before: Vec<f32> = roots.iter().map(|r| r.mu).collect();
        for (g, root) in roots.iter_mut().enumerate() {
            root.newton(x_sq[g], curv[g], t);
        }
        if settled(&before, roots.iter().map(|r| r.mu), &dz_norm, t) {
            break;
        }
    }
    for (g, range) in units.runs() {
        write_group(&mut x[range.clone()], &d[range], dz_norm[g], roots[g].mu, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `largest` is the left fold of `max_pair` from −∞ bit for bit, with zeros of both
        /// signs, NaN and lengths around the lane count.
        #[test]
        fn largest_is_the_left_fold(
            d in proptest::collection::vec(
                prop_oneof![Just(0.0f32), Just(-0.0), Just(f32::NAN), -5.0f32..5.0],
                0..80,
            ),
        ) {
            let fold = d.iter().fold(f32::NEG_INFINITY, |m, v| max_pair(m, *v));
            prop_assert_eq!(largest(&d).to_bits(), fold.to_bits());
        }
    }
}
