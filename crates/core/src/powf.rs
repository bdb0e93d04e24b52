//! `x^e` for a slice of non-negative f32 values at once, vectorised: LpSGD (SPEC §1.2) takes
//! four powers per weight per step, and libm's `powf`, one call per value, cost 4–6 ns each on
//! our CPU: most of the step.
//!
//! Each value is computed in f64 and rounded once to f32:
//!
//! ```text
//! x = 2^k·m,  m ∈ [√½, √2)
//! log₂ m = (2/ln 2)·atanh s,  s = (m − 1)/(m + 1),  atanh s = s + s³/3 + … + s¹⁵/15
//! t = e·(k + log₂ m) = n + f,  n = round(t),  f ∈ [−½, ½]
//! x^e = 2^n · Σ_{i ≤ 12} (f·ln 2)^i / i!
//! ```
//!
//! `|s| ≤ 0.172` and `|f·ln 2| ≤ 0.347`, so both series are cut off below 1e-13 relative error:
//! the f32 result is the correctly rounded `x^e` except where the exact value lies within about
//! 1e-13 of a rounding boundary (a few in a million; then it is the other neighbour, 1 ulp away).
//! libm's `powf` promises less (0.82 ulp), so the two differ in rare values: code that switches
//! from one to the other moves a training run by float rounding.
//!
//! An integral `e` of 0, ±1 or ±2 is computed by [`crate::Lane::powf`] (by multiplication and
//! division, as burn's CPU backend computes it).
//! Special values: `0^e` is 0 (`e > 0`), 1 or ∞; `∞^e` is ∞ (`e > 0`), 1 or 0; NaN stays NaN; a
//! negative `x` gives NaN (callers pass magnitudes).
//!
//! The loop is written once and runs compiled for the widest vector unit the CPU has
//! ([`crate::wide`]).

use std::f64::consts::{LN_2, SQRT_2};

/// `x ← x^e` for every value of `xs` (non-negative or NaN).
pub fn powf_in_place(xs: &mut [f32], e: f64) {
    let whole = e as i64;
    if whole as f64 == e && (-2..=2).contains(&whole) {
        xs.iter_mut().for_each(|x| *x = crate::Lane::powf(*x, e));
        return;
    }
    let e = f64::from(e as f32);
    crate::widest!(powf_loop(xs, e));
}

/// The loop every variant compiles; `e` is already rounded to f32.
#[inline(always)]
fn powf_loop(xs: &mut [f32], e: f64) {
    let (at_zero, at_infinity) = if e > 0.0 {
        (0.0, f32::INFINITY)
    } else {
        (f32::INFINITY, 0.0)
    };
    for x in xs {
        let v = *x;
        let p = power(v, e);
        *x = if v == 0.0 {
            at_zero
        } else if v == f32::INFINITY {
            at_infinity
        } else if v.is_nan() || v < 0.0 {
            f32::NAN
        } else {
            p
        };
    }
}

/// `x^e` for a finite `x > 0` (any other `x` gives a meaningless value, replaced by the caller).
#[inline(always)]
fn power(x: f32, e: f64) -> f32 {
    const MANTISSA: u64 = (1 << 52) - 1;
    const ONE: u64 = 1023 << 52;
    // 1.5·2^52: adding it rounds a |t| < 2^51 to an integer, held in the low mantissa bits.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let bits = f64::from(x).to_bits();
    // Wrapping arithmetic: this crate keeps overflow checks, whose branches would stop the loop
    // from being vectorised (no value here can overflow).
    let exponent = ((bits >> 52) as i32 & 0x7ff).wrapping_sub(1023);
    let m = f64::from_bits((bits & MANTISSA) | ONE);
    let fold = m > SQRT_2;
    let m = if fold { m * 0.5 } else { m };
    let k = f64::from(exponent.wrapping_add(i32::from(fold)));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0
                    + s2 * (1.0 / 9.0
                        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    let log2 = k + s * series * (2.0 / LN_2);
    let t = (e * log2).clamp(-200.0, 200.0);
    let shifted = t + ROUND;
    let n = shifted - ROUND;
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    let u = (t - n) * LN_2;
    let mut sum = 1.0 / 479_001_600.0; // 1/12!
    for i in (0..12).rev() {
        sum = sum * u + INVERSE_FACTORIALS[i];
    }
    (sum * scale) as f32
}

/// `1/i!` for `i = 0..12`.
const INVERSE_FACTORIALS: [f64; 12] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The correctly rounded `x^e` (f64 `powf`, then one rounding to f32), `e` rounded to f32
    /// first as burn rounds a scalar.
    fn reference(x: f32, e: f64) -> f32 {
        f64::from(x).powf(f64::from(e as f32)) as f32
    }

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    proptest! {
        /// Within 1 ulp of the correctly rounded value for every non-negative f32 (subnormals
        /// and results that overflow or underflow f32 included), and equal to it almost always.
        #[test]
        fn within_one_ulp_and_nearly_always_exact(
            xs in proptest::collection::vec(
                prop_oneof![
                    0.0f32..1.0,
                    0.0f32..1e6,
                    (0u32..0x7f80_0000).prop_map(f32::from_bits),
                ],
                256,
            ),
            e in prop_oneof![0.01f64..20.0, -8.0f64..-0.01, Just(6.000000000000001), Just(0.5)],
        ) {
            let mut out = xs.clone();
            powf_in_place(&mut out, e);
            let mut inexact = 0;
            for (x, y) in xs.iter().zip(&out) {
                let want = reference(*x, e);
                prop_assert!(ulps(*y, want) <= 1, "{}^{} = {} (want {})", x, e, y, want);
                inexact += usize::from(*y != want);
            }
            prop_assert!(inexact <= 1, "{} of 256 values off by one ulp", inexact);
        }
    }

    /// Zero, infinity, NaN and negative inputs; the exponents computed by multiplication.
    #[test]
    fn special_values_and_integral_exponents() {
        let xs = [0.0f32, f32::INFINITY, f32::NAN, -2.0, 3.0];
        let mut a = xs;
        powf_in_place(&mut a, 1.5);
        assert_eq!(&a[..2], &[0.0, f32::INFINITY]);
        assert!(a[2].is_nan() && a[3].is_nan());
        assert_eq!(a[4], reference(3.0, 1.5));
        let mut b = xs;
        powf_in_place(&mut b, -0.5);
        assert_eq!(&b[..2], &[f32::INFINITY, 0.0]);
        for (e, want) in [(0.0, [1.0f32, 1.0]), (1.0, [-2.0, 3.0]), (2.0, [4.0, 9.0])] {
            let mut c = [-2.0f32, 3.0];
            powf_in_place(&mut c, e);
            assert_eq!(c, want, "e = {e}");
        }
    }

    /// Every f32 in [1, 2) and across the exponent range, one exponent each: nowhere more than
    /// 1 ulp off (an exhaustive sweep of the mantissas the polynomial sees).
    #[test]
    fn every_mantissa_within_one_ulp() {
        let xs: Vec<f32> = (0..1u32 << 23)
            .step_by(7)
            .map(|m| f32::from_bits((127 << 23) | m))
            .chain((1..254u32).map(|k| f32::from_bits((k << 23) | 0x2a_5a5a)))
            .collect();
        for e in [6.000000000000001, 1.0 / 6.0, 0.2, 5.0, 15.285714285714286] {
            let mut out = xs.clone();
            powf_in_place(&mut out, e);
            let worst = xs
                .iter()
                .zip(&out)
                .map(|(x, y)| ulps(*y, reference(*x, e)))
                .max()
                .unwrap_or(0);
            assert!(worst <= 1, "e = {e}: {worst} ulps");
        }
    }
}
