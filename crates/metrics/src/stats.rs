//! Summary statistics over seeds.
//!
//! Tables report `mean ± std` with the sample standard deviation (`n − 1`), and a 95% Student-t
//! interval `mean ± t_{0.975, n−1}·std/√n`. Comparisons between two arms use Welch's t-test
//! (unequal variances, Welch–Satterthwaite degrees of freedom); differences of means get the
//! matching 95% Welch interval. A family of tests is corrected for multiplicity by Holm's
//! step-down method ([`holm`]).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, spread and interval of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for n = 1).
    pub std: f64,
    /// Half-width of the 95% Student-t interval (`None` for n < 2).
    pub ci95: Option<f64>,
}

/// Summary of `xs` (`None` if empty).
pub fn summarize(xs: &[f64]) -> Option<Summary> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let ci95 = (n > 1).then(|| {
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .expect("n - 1 >= 1 degrees of freedom")
            .inverse_cdf(0.975);
        t * std / (n as f64).sqrt()
    });
    Some(Summary { n, mean, std, ci95 })
}

/// Welch's two-sided t-test of equal means: `(t, degrees of freedom, p-value)`; `None` if either
/// sample has fewer than 2 values or both have zero variance.
pub fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let w = Welch::of(a, b)?;
    let t = w.delta / w.se;
    // The survival function, not `1 − cdf`: the difference rounds to 0 once the p-value falls
    // below the double precision of the CDF near 1.
    let p = 2.0 * StudentsT::new(0.0, 1.0, w.df).ok()?.sf(t.abs());
    Some((t, w.df, p))
}

/// The difference of means `mean(a) − mean(b)` with the half-width of its 95% Welch interval,
/// `t_{0.975, df}·√(s_a²/n_a + s_b²/n_b)`; `None` where [`welch`] is `None`.
pub fn welch_interval(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let w = Welch::of(a, b)?;
    let t = StudentsT::new(0.0, 1.0, w.df).ok()?.inverse_cdf(0.975);
    Some((w.delta, t * w.se))
}

/// Holm's step-down adjustment of the p-values of one family of tests: with the raw p-values
/// sorted ascending, `p₍ᵢ₎` becomes `max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎)` (m tests, i from 1);
/// returned in the input's order. A test is significant at level α after the correction exactly
/// when its adjusted p-value is ≤ α. It controls the family-wise error rate at α without any
/// assumption on how the tests depend on each other (Holm 1979).
pub fn holm(raw: &[f64]) -> Vec<f64> {
    let m = raw.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * raw[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Equivalence of a sample's mean to 0 within `±bound` by two one-sided t-tests (TOST,
/// Schuirmann 1987): with `se = s/√n` and `n − 1` degrees of freedom, the p-value is
/// `max(P(T ≥ (x̄ + bound)/se), P(T ≤ (x̄ − bound)/se))`, significant when the mean lies inside
/// the bound beyond chance. Returns `(mean, half-width of the 95% t interval, p)`; `None` for
/// fewer than 2 values or zero variance (no test can speak).
pub fn equivalence(xs: &[f64], bound: f64) -> Option<(f64, f64, f64)> {
    let s = summarize(xs)?;
    if s.n < 2 || s.std == 0.0 {
        return None;
    }
    let se = s.std / (s.n as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (s.n - 1) as f64).ok()?;
    let above_lower = t.sf((s.mean + bound) / se);
    let below_upper = t.cdf((s.mean - bound) / se);
    Some((s.mean, s.ci95?, above_lower.max(below_upper)))
}

/// The pieces of Welch's test: difference of means, its standard error and the
/// Welch–Satterthwaite degrees of freedom.
struct Welch {
    delta: f64,
    se: f64,
    df: f64,
}

impl Welch {
    fn of(a: &[f64], b: &[f64]) -> Option<Self> {
        let (sa, sb) = (summarize(a)?, summarize(b)?);
        if sa.n < 2 || sb.n < 2 {
            return None;
        }
        let (va, vb) = (sa.std.powi(2) / sa.n as f64, sb.std.powi(2) / sb.n as f64);
        if va + vb == 0.0 {
            return None;
        }
        let df =
            (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
        Some(Self {
            delta: sa.mean - sb.mean,
            se: (va + vb).sqrt(),
            df,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_hand_computed() {
        let s = summarize(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.n, s.mean, s.std), (3, 2.0, 1.0));
        // t_{0.975, 2} = 4.302653
        assert!((s.ci95.unwrap() - 4.302_653 / 3f64.sqrt()).abs() < 1e-5);
        let one = summarize(&[5.0]).unwrap();
        assert_eq!((one.std, one.ci95), (0.0, None));
        assert!(summarize(&[]).is_none());
    }

    /// TOST by hand: mean 0.01, s = 0.01, n = 4 (se 0.005, 3 df), bound 0.05: the upper test's
    /// t = −8 and the lower test's t = 12, so p = P(T₃ ≤ −8) = 0.0020 (tables); a mean outside
    /// the bound is never significant, and the p-value shrinks as the bound widens.
    #[test]
    fn equivalence_hand_computed() {
        let xs = [
            0.01 - 0.01 * 1.5f64.sqrt(),
            0.01,
            0.01,
            0.01 + 0.01 * 1.5f64.sqrt(),
        ];
        let s = summarize(&xs).unwrap();
        assert!((s.std - 0.01).abs() < 1e-12, "{s:?}");
        let (mean, ci, p) = equivalence(&xs, 0.05).unwrap();
        assert!((mean - 0.01).abs() < 1e-12);
        assert!((ci - s.ci95.unwrap()).abs() < 1e-15);
        assert!((p - 0.00204).abs() < 5e-5, "{p}");
        let shifted: Vec<f64> = xs.iter().map(|x| x + 0.06).collect();
        assert!(equivalence(&shifted, 0.05).unwrap().2 > 0.5);
        assert!(equivalence(&xs, 0.1).unwrap().2 < p);
        assert!(equivalence(&[0.0, 0.0], 0.05).is_none());
        assert!(equivalence(&[0.0], 0.05).is_none());
    }

    #[test]
    fn welch_hand_computed() {
        // a: mean 2, var 1; b: mean 5, var 1; n = 3 each → t = -3/√(2/3), df = 4
        let (t, df, p) = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((t + 3.0 / (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!((df - 4.0).abs() < 1e-9);
        // two-sided p for |t| = 3.674 with 4 df ≈ 0.0213
        assert!((p - 0.0213).abs() < 5e-4, "{p}");
        assert!(welch(&[1.0], &[2.0, 3.0]).is_none());
    }

    /// Far-apart samples keep a p-value, not 0: with 2 df the two-sided p is
    /// `2 / (√(2+t²)(√(2+t²)+|t|))` in closed form, here about 5e-19.
    #[test]
    fn welch_p_below_double_resolution_of_the_cdf() {
        let (t, df, p) = welch(&[0.0, 1.0], &[1e9, 1e9 + 1.0]).unwrap();
        assert!((df - 2.0).abs() < 1e-9);
        let r = (2.0 + t * t).sqrt();
        let exact = 2.0 / (r * (r + t.abs()));
        assert!(
            p > 0.0 && ((p - exact) / exact).abs() < 1e-6,
            "{p} vs {exact}"
        );
    }

    #[test]
    fn welch_interval_hand_computed() {
        // Same samples: Δ = −3, se = √(2/3), df = 4, t_{0.975, 4} = 2.776445.
        let (delta, half) = welch_interval(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((delta + 3.0).abs() < 1e-12);
        assert!(
            (half - 2.776_445 * (2.0f64 / 3.0).sqrt()).abs() < 1e-5,
            "{half}"
        );
        assert!(welch_interval(&[1.0, 1.0], &[2.0, 2.0]).is_none());
    }

    /// Holm's adjustment against values computed by hand: sorted p = 0.01, 0.02, 0.03, 0.04
    /// with m = 4 become 0.04, 0.06, 0.06 (the running maximum keeps them monotone), 0.06.
    #[test]
    fn holm_hand_computed() {
        let adjusted = holm(&[0.03, 0.01, 0.04, 0.02]);
        let expected = [0.06, 0.04, 0.06, 0.06];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        // Capped at 1, one test unchanged, none empty.
        assert_eq!(holm(&[0.4, 0.6]), vec![0.8, 0.8]);
        assert_eq!(holm(&[0.03]), vec![0.03]);
        assert!(holm(&[]).is_empty());
        // SET vs static ERK at 0.95 and 0.98 (raw 0.022, 0.016) within a family of five.
        let family = holm(&[0.022, 0.016, 0.11, 0.16, 0.5]);
        assert!((family[1] - 0.08).abs() < 1e-12 && (family[0] - 0.088).abs() < 1e-12);
    }
}
