//! One group's Newton solve of the group lasso's prox in a diagonal metric (ProxSSI's, SPEC §1.4),
//! in the tensor form's f32 operations: the pieces the host forms share per group
//! ([`super`], one group at a time) and per block of groups ([`super::lanes`]).

use sparselab_core::Lane;

/// The floor of a norm before it divides (as the tensor form clamps it).
pub(crate) const TINY: f64 = 1e-30;

/// burn's `max_pair` of one element.
#[inline(always)]
pub(super) fn max_pair(a: f32, b: f32) -> f32 {
    if a < b { b } else { a }
}

/// burn's `min_pair` of one element.
#[inline(always)]
pub(super) fn min_pair(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// One group's secular equation `μ·‖x(μ)‖ = t` ([`crate::prox::group_prox_diagonal`]): its
/// bracket `[lo, hi]` and Newton's iterate μ, with the tensor form's f32 operations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Root {
    lo: f32,
    hi: f32,
    pub(crate) mu: f32,
}

impl Root {
    /// The bracket `[t/‖z‖, t·max d/(‖Dz‖ − t)]` and the start `μ₀ = t·(‖Dz‖/‖z‖)/(‖Dz‖ − t)`
    /// clamped to it, from `‖Dz‖`, `Σ z²` and `max d`.
    #[inline(always)]
    pub(crate) fn start(dz_norm: f32, z_squares: f32, t: f64, d_max: f32) -> Self {
        let z_norm = z_squares.sqrt().clamp_min(TINY);
        let excess = (dz_norm - t as f32).clamp_min(1e-12);
        let lo = (1.0 / z_norm).mul_scalar(t);
        let hi = (1.0 / excess).mul_scalar(t) * d_max;
        let start = (dz_norm / z_norm / excess).mul_scalar(t);
        Self {
            lo,
            hi,
            mu: min_pair(max_pair(start, lo), hi),
        }
    }

    /// One Newton step from `‖x(μ)‖² = Σ s/(d + μ)²` and `Σ s/(d + μ)³`, clamped to the bracket.
    #[inline(always)]
    pub(crate) fn newton(&mut self, x_squares: f32, curvature: f32, t: f64) {
        let x_norm = x_squares.sqrt().clamp_min(TINY);
        let f = self.mu * x_norm - t as f32;
        let df = (x_norm - self.mu * curvature / x_norm).clamp_min(TINY);
        self.mu = min_pair(max_pair(self.mu - f / df, self.lo), self.hi);
    }
}

/// One element's two Newton sums, `s/(d + μ)²` and `s/(d + μ)³`, as the tensor form computes
/// them: `inv = 1/(d + μ)`, `a = s·inv·inv`, `a·inv`.
#[inline(always)]
pub(crate) fn newton_terms(s: f32, d: f32, mu: f32) -> (f32, f32) {
    let inv = 1.0 / (d + mu);
    let a = s * inv * inv;
    (a, a * inv)
}

/// Whether a Newton step left every kept group's μ where it was, bit for bit (`before`: the
/// μ it started from; a group with `‖D z‖ ≤ t` is zeroed whatever its μ, so it is not looked at).
/// A step's μ is a function of the μ it starts from alone (the group's `s` and `d` are fixed), so
/// from then on every further step would give the same μ again: stopping early gives the bits
/// of all `iterations` steps, the tensor form's, at a fraction of the cost (Newton from the
/// constant-metric root settles in a few steps).
#[inline(always)]
pub(crate) fn settled(
    before: &[f32],
    after: impl Iterator<Item = f32>,
    dz_norm: &[f32],
    t: f64,
) -> bool {
    before
        .iter()
        .zip(after)
        .zip(dz_norm)
        .all(|((b, a), n)| *n <= t as f32 || b.to_bits() == a.to_bits())
}

/// Writes one group's prox over its `z` in `x`: exactly zero when `‖D z‖ ≤ t` (its μ is then
/// meaningless and may not be finite), else `x = d·z/(d + μ)`.
#[inline(always)]
pub(crate) fn write_group(x: &mut [f32], d: &[f32], dz_norm: f32, mu: f32, t: f64) {
    if dz_norm <= t as f32 {
        x.fill(0.0);
    } else {
        for (x, d) in x.iter_mut().zip(d) {
            *x = (*d * *x) / (*d + mu);
        }
    }
}
