//! `x^e` for non-negative f32 values, in f32 arithmetic that vectorises: LpSGD (SPEC §1.2) takes
//! three powers per weight per step, more than any other part of its step costs.
//!
//! [`Power::of`] computes, for a finite `x > 0`,
//!
//! ```text
//! x = 2^k·m,  m ∈ [√½, √2)
//! log₂ m = (2/ln 2)·atanh s,  s = (m − 1)/(m + 1),  atanh s = s + s³/3 + … + s⁹/9
//! t = e·(k + log₂ m) = n + f,  n = round(t),  f ∈ [−½, ½]
//! x^e = 2^n · Σ_{i ≤ 7} (f·ln 2)^i / i!
//! ```
//!
//! in f32 with fused multiply-adds. `e·k` is formed without rounding error (`e` split into a
//! 12-bit head and the rest), so the error comes from `log₂ m` (a few ulp of a value below ½)
//! times `e`. **Accuracy:** within `⌈|e|⌉ + 1` ulp of the correctly rounded `x^e` (measured on a
//! sweep of every third mantissa and every exponent: 1 ulp for `|e| ≤ 1`, 7 at `e = 6`, 16 at
//! `e = 15.3`; the tests hold it to that bound). libm's `powf` is within 0.82 ulp but is one
//! call per value: 3.5–7 ns on our CPU, against about 0.6 ns here (16 lanes at a time). So code
//! that switches from one to the other moves a training run by float rounding.
//!
//! An integral `e` of 0, 1 or 2 is computed as [`crate::Lane::powf`] computes it (as burn's CPU
//! backend does: `x^1` is `x`, `x^2` is `x·x`); negative ones take the series (burn divides),
//! since the choice between the two runs per element and a division costs as much as the series.
//! Special values: `0^e` is 0 (`e > 0`), 1 or ∞; `∞^e` is ∞ (`e > 0`), 1 or 0; NaN stays NaN; a
//! negative `x` gives NaN (callers pass magnitudes).
//!
//! **Vector width.** The fused multiply-adds round once in every variant of a
//! [`crate::widest!`] kernel (the baseline variant calls libm's `fmaf`, exact but slow), so a
//! kernel calling [`Power::of`] computes the same bits at every width. Call it inside one.

use std::f64::consts::LN_2;

/// An exponent prepared for [`Power::of`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Power {
    /// `e` rounded to f32 (as burn rounds a scalar).
    e: f32,
    /// `e` with its low 12 mantissa bits cleared: `head·k` is exact for `|k| < 2^12`.
    head: f32,
    /// `e − head`.
    tail: f32,
    /// Which small integral exponent `e` is, if any (then computed by multiplication).
    integral: Option<i8>,
}

/// `2/((2i + 1)·ln 2)`, the series of `log₂ m` in `s`.
const LOG2: [f32; 5] = {
    const C: f64 = 2.0 / LN_2;
    [
        C as f32,
        (C / 3.0) as f32,
        (C / 5.0) as f32,
        (C / 7.0) as f32,
        (C / 9.0) as f32,
    ]
};

/// `(ln 2)^i / i!`, the series of `2^f`.
const EXP2: [f32; 8] = {
    const A: f64 = LN_2;
    const A2: f64 = A * A / 2.0;
    const A3: f64 = A2 * A / 3.0;
    const A4: f64 = A3 * A / 4.0;
    const A5: f64 = A4 * A / 5.0;
    const A6: f64 = A5 * A / 6.0;
    const A7: f64 = A6 * A / 7.0;
    [
        1.0, A as f32, A2 as f32, A3 as f32, A4 as f32, A5 as f32, A6 as f32, A7 as f32,
    ]
};

impl Power {
    /// The exponent `e`.
    pub fn new(e: f64) -> Self {
        let whole = e as i64;
        let integral = (whole as f64 == e && (0..=2).contains(&whole)).then_some(whole as i8);
        let e = e as f32;
        let head = f32::from_bits(e.to_bits() & 0xffff_f000);
        Self {
            e,
            head,
            tail: e - head,
            integral,
        }
    }

    /// `x^e` for `x ≥ 0` (or NaN). The series is computed for every exponent and the product
    /// chosen after it: in a vectorised loop both sides of a choice run, and the series costs
    /// the same either way.
    #[inline(always)]
    pub fn of(self, x: f32) -> f32 {
        let series = self.general(x);
        match self.integral {
            Some(0) => 1.0,
            Some(1) => x,
            Some(2) => x * x,
            _ => series,
        }
    }

    /// `x^e` by the series of the module documentation, with the special values.
    #[inline(always)]
    fn general(self, x: f32) -> f32 {
        let (at_zero, at_infinity) = if self.e > 0.0 {
            (0.0, f32::INFINITY)
        } else {
            (f32::INFINITY, 0.0)
        };
        let p = self.finite(x);
        if x == 0.0 {
            at_zero
        } else if x == f32::INFINITY {
            at_infinity
        } else if x.is_nan() || x < 0.0 {
            f32::NAN
        } else {
            p
        }
    }

    /// `x^e` for a finite `x > 0` (any other `x` gives a meaningless value, replaced by the
    /// caller). Wrapping integer arithmetic: overflow checks' branches would stop the loop from
    /// being vectorised (no value here can overflow).
    #[inline(always)]
    fn finite(self, x: f32) -> f32 {
        // 1.5·2^23: adding it rounds a |t| < 2^22 to an integer, held in the low mantissa bits.
        const ROUND: f32 = 12_582_912.0;
        // Subnormal x: scale by 2^23 first, so the mantissa is normalised.
        let subnormal = x < f32::MIN_POSITIVE;
        let y = if subnormal { x * 8_388_608.0 } else { x };
        let bits = y.to_bits();
        let bias = if subnormal { 127 + 23 } else { 127 };
        let exponent = ((bits >> 23) as i32 & 0xff).wrapping_sub(bias);
        let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        let fold = m > std::f32::consts::SQRT_2;
        let m = if fold { m * 0.5 } else { m };
        let k = exponent.wrapping_add(i32::from(fold)) as f32;
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let series = s2.mul_add(
            s2.mul_add(s2.mul_add(s2.mul_add(LOG2[4], LOG2[3]), LOG2[2]), LOG2[1]),
            LOG2[0],
        );
        let log2 = s * series;
        // t = head·k (exact) + (tail·k + e·log₂ m).
        let whole = self.head * k;
        let rest = self.tail.mul_add(k, self.e * log2);
        let t = (whole + rest).clamp(-170.0, 140.0);
        let shifted = t + ROUND;
        let n = shifted - ROUND;
        let n_bits = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let f = ((whole - n) + rest).clamp(-1.0, 1.0);
        let mut sum = EXP2[7];
        for c in EXP2[..7].iter().rev() {
            sum = f.mul_add(sum, *c);
        }
        // 2^n as two normal factors, so a result below f32's normal range rounds once.
        let half = n_bits >> 1;
        let scale = |n: i32| f32::from_bits((n.wrapping_add(127) as u32) << 23);
        (sum * scale(half)) * scale(n_bits.wrapping_sub(half))
    }
}

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
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// The documented bound: `⌈|e|⌉ + 1` ulp.
    fn bound(e: f64) -> u32 {
        e.abs().ceil() as u32 + 1
    }

    fn powers(xs: &[f32], e: f64) -> Vec<f32> {
        let power = Power::new(e);
        crate::widest!(xs.iter().map(|x| power.of(*x)).collect())
    }

    proptest! {
        /// Within the bound of the correctly rounded value for every non-negative f32
        /// (subnormals and results that overflow or underflow f32 included), the same bits at
        /// every vector width.
        #[test]
        fn within_the_bound_at_every_width(
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
            let out = powers(&xs, e);
            for (x, y) in xs.iter().zip(&out) {
                let want = reference(*x, e);
                prop_assert!(ulps(*y, want) <= bound(e), "{}^{} = {} (want {})", x, e, y, want);
            }
            prop_assert_eq!(out, crate::wide::with_baseline(|| powers(&xs, e)));
        }
    }

    /// Zero, infinity, NaN and negative inputs; the exponents computed by multiplication.
    #[test]
    fn special_values_and_integral_exponents() {
        let xs = [0.0f32, f32::INFINITY, f32::NAN, -2.0, 3.0];
        let a = powers(&xs, 1.5);
        assert_eq!(&a[..2], &[0.0, f32::INFINITY]);
        assert!(a[2].is_nan() && a[3].is_nan());
        assert!(ulps(a[4], reference(3.0, 1.5)) <= 2);
        let b = powers(&xs, -0.5);
        assert_eq!(&b[..2], &[f32::INFINITY, 0.0]);
        for (e, want) in [(0.0, [1.0f32, 1.0]), (1.0, [-2.0, 3.0]), (2.0, [4.0, 9.0])] {
            assert_eq!(powers(&[-2.0, 3.0], e), want, "e = {e}");
        }
        for e in [-1.0, -2.0] {
            let got = powers(&[4.0, 3.0], e);
            assert_eq!(got[0], reference(4.0, e));
            assert!(ulps(got[1], reference(3.0, e)) <= bound(e));
        }
    }

    /// Every third f32 mantissa in [1, 2), and every exponent, for LpSGD's exponents at
    /// p = 1.07, 1.2 and 1.5 (q, 1/(p−1), p − 1) and a few others: nowhere beyond the bound,
    /// and a 1-ulp error rare where `|e| ≤ 1` (a mutation of the series' last term fails this).
    #[test]
    fn every_mantissa_within_the_bound() {
        let xs: Vec<f32> = (0..1u32 << 23)
            .step_by(3)
            .map(|m| f32::from_bits((127 << 23) | m))
            .chain((1..254u32).map(|k| f32::from_bits((k << 23) | 0x2a_5a5a)))
            .collect();
        for e in [
            15.285714285714286,
            14.285714285714286,
            0.07,
            6.000000000000001,
            5.000000000000001,
            0.2,
            3.0,
            0.5,
            -3.7,
            1.0 / 6.0,
        ] {
            let out = powers(&xs, e);
            let errors: Vec<u32> = xs
                .iter()
                .zip(&out)
                .map(|(x, y)| ulps(*y, reference(*x, e)))
                .collect();
            let worst = errors.iter().copied().max().unwrap_or(0);
            assert!(worst <= bound(e), "e = {e}: {worst} ulps");
            if e.abs() <= 1.0 {
                let off = errors.iter().filter(|u| **u > 0).count();
                assert!(off * 10 < xs.len(), "e = {e}: {off} values off by an ulp");
            }
        }
    }
}
