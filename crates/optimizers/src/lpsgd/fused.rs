//! LpSGD's sphere step as a few passes over the f32 storage on the CPU backend (SPEC §1.2).
//!
//! The tensor-op form ([`super::LpSgd`]'s `step`) makes about twenty passes over memory,
//! allocates a tensor for each, and takes its four powers per element with libm's `powf`, one
//! call per value. This form computes, per element,
//!
//! ```text
//! buf ← μ·buf + g,  d = g + μ·buf                  (first step: buf = g)
//! w₀ = w / max(‖w_j‖_p, tiny)                      (first step only)
//! v = (1 − η)·sign(w₀)|w₀|^{p−1} − η·d/(‖d_j‖_q + 1e-6)
//! u = |v/m_j|^{1/(p−1)},  S_j = Σ_j |v/m_j|·u       (m_j the unit's largest |v|)
//! w ← sign(v)·u·S_j^{−1/p}
//! ```
//!
//! The last two lines are the tensor-op form's `w = sign(v/‖v_j‖_q)·|v/‖v_j‖_q|^{1/(p−1)}`
//! with one power fewer: since `q = p/(p−1) = 1 + 1/(p−1)`, `|x|^q = |x|·|x|^{1/(p−1)}`, so the
//! power of the primal map also gives the terms of `‖v_j‖_q`, and `(m_j/‖v_j‖_q)^{1/(p−1)} =
//! S_j^{−1/(q(p−1))} = S_j^{−1/p}` (three powers per element instead of four). A unit whose `v` is
//! all zero gets `w = 0`, as in the tensor-op form. Unit norms are `m·(Σ|x/m|^r)^{1/r}` (`m` the
//! unit's largest `|x|`). Five passes: the momentum (and the largest `|d|`), the sum for
//! `‖d_j‖_q`, the dual step into `d` (and the largest `|v|`), the primal power with the sums
//! `S_j`, and the scale. Every pass runs on pieces of whole unit runs in parallel
//! ([`Units::piece_len`], [`Units::par_fold`]) at the CPU's full vector width, the powers taken
//! inside the passes by [`Power`] (f32, within `⌈|e|⌉ + 1` ulp) and the sums added piece by piece
//! in an order fixed by the shape. So the two forms agree to float rounding, not bit for bit
//! (tested: within 1e-5 of each array's largest magnitude after three steps), and a run gives
//! the same bits with any number of threads and at any vector width.

use rayon::prelude::*;
use sparselab_core::powf::Power;
use sparselab_core::units::{Largest, Sum};
use sparselab_core::{Lane, Units};
use std::cell::RefCell;

/// The floor under a norm before it divides (the tensor-op form's `clamp_min`).
pub(super) const TINY: f64 = f32::MIN_POSITIVE as f64;

/// The scalars of one sphere step.
pub(super) struct SphereStep {
    /// The sphere's exponent p.
    pub p: f64,
    /// Nesterov momentum μ (0: none).
    pub momentum: f64,
    /// The learning rate η.
    pub lr: f64,
    /// Whether this is the parameter's first step (project onto the sphere, start the buffer).
    pub first: bool,
}

thread_local! {
    /// The step's direction `d`, kept between steps: a fresh megabyte-sized allocation costs a
    /// page fault per page on every step.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `‖x_j‖_r = m·(Σ|x/m|^r)^{1/r}` for every unit (the tensor-op `unit_norm`), given
/// `max = max|x_j|`.
fn unit_norms(units: &Units, x: &[f32], max: &[f32], r: f64) -> Vec<f32> {
    let floor: Vec<f32> = max.iter().map(|m| m.clamp_min(TINY)).collect();
    let power = Power::new(r);
    let sums = units.par_fold::<Sum>(x, &floor, move |x, m| power.of(x.abs() / m));
    max.iter()
        .zip(sums)
        .map(|(m, s)| *m * Lane::powf(s, 1.0 / r))
        .collect()
}

/// The largest `|x|` of each unit in one piece that starts at element `start`.
fn piece_max(units: &Units, start: usize, x: &[f32]) -> Vec<f32> {
    let ones = vec![1.0f32; units.count()];
    let mut max = vec![0.0f32; units.count()];
    sparselab_core::widest!(
        units.fold_piece::<Largest>(start, x, &ones, &mut max, |x, _| { x.abs() })
    );
    max
}

/// `x ← f(x, y, its unit's norm)` piece by piece at full vector width, `y` the same element of
/// another array; with `max`, also the largest `|x|` of each unit after the update (taken while
/// each piece is in cache).
fn update(
    units: &Units,
    (x, y): (&mut [f32], &mut [f32]),
    norms: &[f32],
    max: bool,
    f: impl Fn(f32, f32, f32) -> f32 + Copy + Sync,
) -> Option<Vec<f32>> {
    let maxima = pieces(units, x, y)
        .map(|(start, x, y)| {
            // A `move` closure: its own copy of `f` (and of the scalars it holds) in registers.
            sparselab_core::widest!(
                units.with_units(start, x, y, norms, move |x, y, n| { *x = f(*x, y, n) })
            );
            max.then(|| piece_max(units, start, x))
        })
        // Collected as a `Vec` of options: collecting into an `Option` would stop at the first
        // `None` and leave later pieces un-updated.
        .collect::<Vec<Option<Vec<f32>>>>();
    max.then(|| units.merge::<Largest>(maxima.into_iter().flatten().collect()))
}

/// The same pieces ([`Units::piece_len`]) of two arrays side by side, in parallel, each with the
/// index of its first element.
fn pieces<'a>(
    units: &Units,
    x: &'a mut [f32],
    y: &'a mut [f32],
) -> impl IndexedParallelIterator<Item = (usize, &'a mut [f32], &'a mut [f32])> {
    let piece = units.piece_len();
    x.par_chunks_mut(piece)
        .zip(y.par_chunks_mut(piece))
        .enumerate()
        .map(move |(i, (x, y))| (i * piece, x, y))
}

/// `d = g + μ·buf` after `buf ← μ·buf + g` (the first step: `d = g + μ·g`, `buf` already `g`;
/// without momentum `d = g`), for one piece. Its scalars arrive by value, so they live in
/// registers inside [`sparselab_core::widest!`].
#[inline(always)]
fn momentum(d: &mut [f32], buf: &mut [f32], g: &[f32], mu: f64, first: bool) {
    for ((d, b), g) in d.iter_mut().zip(buf.iter_mut()).zip(g) {
        *d = if mu <= 0.0 {
            *g
        } else if first {
            *g + g.mul_scalar(mu)
        } else {
            *b = b.mul_scalar(mu) + *g;
            *g + b.mul_scalar(mu)
        };
    }
}

/// One step in place: `w` (the weight, becomes the new weight) and `buf` (the momentum buffer;
/// on the first step a copy of `g`) on the units of `units`.
pub(super) fn sphere_step(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
) {
    SCRATCH.with_borrow_mut(|d| {
        d.resize(g.len(), 0.0);
        in_place(step, units, w, buf, g, d);
    });
}

fn in_place(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
    d: &mut [f32],
) {
    let (p, mu, lr, first) = (step.p, step.momentum, step.lr, step.first);
    let [q, dual, primal] = super::step_powers(p);
    let piece = units.piece_len();
    let d_max = d
        .par_chunks_mut(piece)
        .zip(buf.par_chunks_mut(piece))
        .zip(g.par_chunks(piece))
        .enumerate()
        .map(|(i, ((d, buf), g))| {
            sparselab_core::widest!(momentum(d, buf, g, mu, first));
            piece_max(units, i * piece, d)
        })
        .collect();
    let d_max = units.merge::<Largest>(d_max);
    if first {
        let ones = vec![1.0f32; units.count()];
        let max = units.par_fold::<Largest>(w, &ones, |x, _| x.abs());
        let norms = unit_norms(units, w, &max, p);
        update(units, (w, d), &norms, false, |w, _, n| {
            w / n.clamp_min(TINY)
        });
    }
    let d_norms = unit_norms(units, d, &d_max, q);
    // v = (1 − η)·dual(w) − η·ĝ, dual(w) = sign(w)·|w|^{p−1}, into d (not needed after).
    let dual = Power::new(dual);
    let v_max = update(units, (d, w), &d_norms, true, move |d, w, n| {
        let dual = w.sign() * dual.of(w.abs());
        dual.mul_scalar(1.0 - lr) - (d / n.add_scalar(1e-6)).mul_scalar(lr)
    })
    .expect("asked for the maxima");
    // w = sign(v)·|v/m|^{1/(p−1)}·S^{−1/p}, S = Σ|v/m|·|v/m|^{1/(p−1)} = Σ|v/m|^q.
    let sums = primal_parts(units, w, d, &v_max, primal);
    let scales: Vec<f32> = sums
        .iter()
        .map(|s| {
            if *s > 0.0 {
                Lane::powf(*s, -1.0 / p)
            } else {
                0.0
            }
        })
        .collect();
    update(units, (w, d), &scales, false, |w, _, c| w * c);
}

/// The primal map's two parts, piece by piece: `w ← sign(v)·u` with `u = |v/m|^{1/(p−1)}`
/// (`exponent` = `1/(p−1)`; `m` the unit's largest `|v|`, floored), and each unit's sum
/// `S = Σ|v/m|·u`, which is `Σ|v/m|^q` since `q = 1 + 1/(p−1)`: one power per element serves both
/// the q-norm and the map (`d` is overwritten with the terms of the sum).
fn primal_parts(
    units: &Units,
    w: &mut [f32],
    v: &mut [f32],
    v_max: &[f32],
    exponent: f64,
) -> Vec<f32> {
    let floor: Vec<f32> = v_max.iter().map(|m| m.clamp_min(TINY)).collect();
    let ones = vec![1.0f32; units.count()];
    let primal = Power::new(exponent);
    let sums = pieces(units, w, v)
        .map(|(start, w, v)| {
            let (floor, ones) = (&floor, &ones);
            let mut acc = vec![0.0f32; units.count()];
            sparselab_core::widest!({
                units.with_units(start, w, v, floor, move |w, v, m| {
                    *w = v.sign() * primal.of(v.abs() / m);
                });
                units.with_units(start, v, w, floor, move |v, u, m| {
                    *v = (v.abs() / m) * u.abs();
                });
                units.fold_piece::<Sum>(start, v, ones, &mut acc, |x, _| x);
            });
            acc
        })
        .collect();
    units.merge::<Sum>(sums)
}
