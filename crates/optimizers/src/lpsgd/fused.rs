//! LpSGD's sphere step as a few passes over the f32 storage on the CPU backend (SPEC §1.2).
//!
//! The tensor-op form ([`super::LpSgd`]'s `step`) makes about twenty passes over memory,
//! allocates a tensor for each, and takes its four powers per element with libm's `powf`, one
//! call per value (most of the step). This form computes, per element, in the tensor-op form's
//! order,
//!
//! ```text
//! buf ← μ·buf + g,  d = g + μ·buf                  (first step: buf = g)
//! w₀ = w / max(‖w_j‖_p, tiny)                      (first step only)
//! v = (1 − η)·sign(w₀)|w₀|^{p−1} − η·d/(‖d_j‖_q + 1e-6)
//! w ← sign(v/‖v_j‖_q)·|v/‖v_j‖_q|^{1/(p−1)}
//! ```
//!
//! with the unit norms `m·(Σ|x/m|^r)^{1/r}` summed by [`Units`] in flex's order, and every power
//! of a whole tensor taken by [`powf_in_place`] (vectorised, correctly rounded but for a few values
//! in a million). So the two forms agree to float rounding, not bit for bit: a power that libm
//! rounds differently moves the rest of the step by that rounding (tested: 1e-5 relative after
//! three steps). The passes are split across the pool's threads in pieces that do not depend on
//! the thread count, so a run gives the same bits with any number of threads.

use sparselab_core::powf::powf_in_place;
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
    /// The step's two work arrays (the direction and the powers), kept between steps: a fresh
    /// megabyte-sized allocation costs a page fault per page on every step.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `powers ← |x|^r` (after `f` maps `|x|` and its unit's entry of `per_unit`), piece by piece.
fn powers_of(
    units: &Units,
    x: &[f32],
    per_unit: &[f32],
    r: f64,
    powers: &mut [f32],
    f: impl Fn(f32, f32) -> f32 + Sync,
) {
    units.par_pieces(powers, |start, piece| {
        let x = &x[start..start + piece.len()];
        units.with_units(start, piece, x, per_unit, |out, x, v| *out = f(x.abs(), v));
        powf_in_place(piece, r);
    });
}

/// `‖x_j‖_r = m·(Σ|x/m|^r)^{1/r}` with `m = max|x_j|` for every unit (the tensor-op
/// `unit_norm`); `powers` holds the `|x/m|^r`.
fn unit_norms(units: &Units, x: &[f32], r: f64, powers: &mut [f32]) -> Vec<f32> {
    let max = units.max_abs(x);
    let floor: Vec<f32> = max.iter().map(|m| m.clamp_min(TINY)).collect();
    powers_of(units, x, &floor, r, powers, |a, m| a / m);
    let sums = units.sums(powers);
    max.iter()
        .zip(sums)
        .map(|(m, s)| *m * Lane::powf(s, 1.0 / r))
        .collect()
}

/// `x ← f(x, y, its unit's norm)` piece by piece, `y` the same element of another array.
fn update(
    units: &Units,
    x: &mut [f32],
    y: &[f32],
    norms: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) {
    units.par_pieces(x, |start, piece| {
        let y = &y[start..start + piece.len()];
        units.with_units(start, piece, y, norms, |x, y, n| *x = f(*x, y, n));
    });
}

/// One step in place: `w` (the weight, becomes the new weight) and `buf` (the momentum buffer;
/// on the first step a copy of `g`) on the units of `units`. Needs `units.exact()`.
pub(super) fn sphere_step(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
) {
    debug_assert!(units.exact());
    SCRATCH.with_borrow_mut(|(d, powers)| {
        d.resize(g.len(), 0.0);
        powers.resize(g.len(), 0.0);
        in_place(step, units, w, buf, g, d, powers);
    });
}

fn in_place(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
    d: &mut [f32],
    powers: &mut [f32],
) {
    let (p, mu, lr) = (step.p, step.momentum, step.lr);
    let q = p / (p - 1.0);
    for ((d, b), g) in d.iter_mut().zip(buf.iter_mut()).zip(g) {
        *d = if mu <= 0.0 {
            *g
        } else if step.first {
            *g + g.mul_scalar(mu)
        } else {
            *b = b.mul_scalar(mu) + *g;
            *g + b.mul_scalar(mu)
        };
    }
    if step.first {
        let norms = unit_norms(units, w, p, powers);
        update(units, w, d, &norms, |w, _, n| w / n.clamp_min(TINY));
    }
    let d_norms = unit_norms(units, d, q, powers);
    // v = (1 − η)·dual(w) − η·ĝ, dual(w) = sign(w)·|w|^{p−1}.
    let ones = vec![1.0f32; units.count()];
    powers_of(units, w, &ones, p - 1.0, powers, |a, _| a);
    update(units, w, powers, &ones, |w, power, _| w.sign() * power);
    update(units, w, d, &d_norms, |dual, d, n| {
        dual.mul_scalar(1.0 - lr) - (d / n.add_scalar(1e-6)).mul_scalar(lr)
    });
    // w = primal(v / ‖v_j‖_q) = sign·|v/‖v_j‖_q|^{1/(p−1)}.
    let v_norms = unit_norms(units, w, q, powers);
    update(units, w, powers, &v_norms, |v, _, n| v / n.clamp_min(TINY));
    powers_of(units, w, &ones, 1.0 / (p - 1.0), powers, |a, _| a);
    update(units, w, powers, &ones, |v, power, _| v.sign() * power);
}
