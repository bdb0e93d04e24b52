//! Expected Hoyer sparsity under the gamma hypothesis (SPEC.md §1.2, ours, derived).
//!
//! If the magnitudes of a unit's `n` weights are `|w_i| = X_i^a` with `X_i ~ Gamma(k, θ)` i.i.d.,
//! then `‖w‖₁/‖w‖₂ ≈ √n·E[X^a]/√E[X^{2a}]` and, to leading order,
//!
//! ```text
//! E[H] ≈ √n/(√n − 1) · [ 1 − Γ(k + a) / √(Γ(k)·Γ(k + 2a)) ]        (clipped to [0, 1])
//! ```
//!
//! (θ cancels: Hoyer sparsity is scale-free). For LpSGD's fixed point `|w_i| ∝ |ĝ_i|^{1/(p−1)}`:
//! with the dual magnitudes `|v_i| = |w_i|^{p−1}` gamma-distributed, `a = 1/(p−1)`; Gaussian
//! gradients (`ĝ² ~ Gamma(½, ·)`) give `k = ½, a = 1/(2(p−1))`, and at p = 2 the bracket is
//! `1 − √(2/π) ≈ 0.202`. The leading-order form overestimates for p ≤ 1.3 (the ratio of means is
//! not the mean of the ratio when a few weights dominate), so [`monte_carlo`] estimates `E[H]`
//! exactly by sampling, and [`fit_shape`] fits `k` to measured magnitudes by maximum likelihood.

use crate::hoyer::hoyer;
use sparselab_core::rng::{ChaCha8Rng, Rng, normal_f64};
use statrs::function::gamma::{digamma, ln_gamma};

/// Leading-order `E[H]` for `n` weights with `|w| = X^a`, `X ~ Gamma(k, ·)`, clipped to [0, 1].
pub fn closed_form(n: usize, k: f64, a: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let ratio = (ln_gamma(k + a) - 0.5 * (ln_gamma(k) + ln_gamma(k + 2.0 * a))).exp();
    let sqrt_n = (n as f64).sqrt();
    (sqrt_n / (sqrt_n - 1.0) * (1.0 - ratio)).clamp(0.0, 1.0)
}

/// One `Gamma(k, 1)` variate, as its logarithm (Marsaglia & Tsang 2000; for `k < 1`,
/// `X = Y·U^{1/k}` with `Y ~ Gamma(k + 1)`). Logarithms keep `X^a` representable for large `a`.
pub fn ln_gamma_variate(k: f64, rng: &mut ChaCha8Rng) -> f64 {
    if k < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return ln_gamma_variate(k + 1.0, rng) + u.ln() / k;
    }
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal_f64(rng);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return (d * v).ln();
        }
    }
}

/// Monte Carlo `E[H]`: the mean Hoyer sparsity of `draws` vectors of `n` magnitudes `X^a`,
/// `X ~ Gamma(k, 1)`.
pub fn monte_carlo(n: usize, k: f64, a: f64, draws: usize, rng: &mut ChaCha8Rng) -> f64 {
    let mut total = 0.0;
    for _ in 0..draws {
        let logs: Vec<f64> = (0..n).map(|_| a * ln_gamma_variate(k, rng)).collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let x: Vec<f32> = logs.iter().map(|l| (l - top).exp() as f32).collect();
        total += hoyer(&x);
    }
    total / draws.max(1) as f64
}

/// Maximum-likelihood shape `k` of a gamma distribution fitted to the positive entries of `x`
/// (zeros carry no likelihood under a gamma law and are skipped): the root of
/// `ln k − ψ(k) = ln(mean x) − mean(ln x)`, found by bisection on ln k (the left side is
/// decreasing in k). `None` with fewer than two distinct positive values.
pub fn fit_shape(x: &[f64]) -> Option<f64> {
    let positive: Vec<f64> = x.iter().copied().filter(|v| *v > 0.0).collect();
    if positive.len() < 2 {
        return None;
    }
    let n = positive.len() as f64;
    let mean = positive.iter().sum::<f64>() / n;
    let mean_ln = positive.iter().map(|v| v.ln()).sum::<f64>() / n;
    let s = mean.ln() - mean_ln;
    if !(s.is_finite() && s > 1e-12) {
        return None;
    }
    let f = |ln_k: f64| {
        let k = ln_k.exp();
        k.ln() - digamma(k) - s
    };
    let (mut lo, mut hi) = (-20.0f64, 20.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((0.5 * (lo + hi)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::rng::stream;

    #[test]
    fn p_two_with_gaussian_gradients_gives_one_minus_sqrt_two_over_pi() {
        // k = ½, a = 1/(2(p−1)) = ½: the bracket is 1 − √(2/π); √n/(√n−1) → 1 for large n.
        let n = 1_000_000;
        let expected = 1.0 - (2.0 / std::f64::consts::PI).sqrt();
        let sqrt_n = (n as f64).sqrt();
        assert!((closed_form(n, 0.5, 0.5) - expected * sqrt_n / (sqrt_n - 1.0)).abs() < 1e-12);
        assert!((closed_form(n, 0.5, 0.5) - 0.2021).abs() < 1e-3);
    }

    #[test]
    fn limits() {
        // a → 0: every magnitude equal → H = 0; the form is clipped to [0, 1] for tiny p.
        assert!(closed_form(100, 2.0, 1e-9).abs() < 1e-6);
        assert_eq!(closed_form(100, 0.5, 50.0), 1.0);
        assert_eq!(closed_form(1, 0.5, 1.0), 0.0);
    }

    /// The leading-order form against a high-precision Monte Carlo where the approximation is
    /// good (p ≥ 1.5 under the Gaussian-gradient hypothesis, n large).
    #[test]
    fn closed_form_matches_monte_carlo_for_p_at_least_one_and_a_half() {
        let mut rng = stream(7, "test");
        for p in [1.5, 2.0, 3.0] {
            let a = 1.0 / (2.0 * (p - 1.0));
            let (cf, mc) = (
                closed_form(800, 0.5, a),
                monte_carlo(800, 0.5, a, 400, &mut rng),
            );
            assert!((cf - mc).abs() < 0.02, "p = {p}: closed {cf}, MC {mc}");
        }
        // And it overestimates for small p, as SPEC says.
        let a = 1.0 / (2.0 * 0.1);
        assert!(closed_form(800, 0.5, a) > monte_carlo(800, 0.5, a, 50, &mut rng) + 0.02);
    }

    #[test]
    fn sampler_has_the_gamma_mean_and_variance() {
        let mut rng = stream(3, "test");
        for k in [0.3, 0.5, 2.0, 7.5] {
            let x: Vec<f64> = (0..200_000)
                .map(|_| ln_gamma_variate(k, &mut rng).exp())
                .collect();
            let mean = x.iter().sum::<f64>() / x.len() as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
            assert!((mean - k).abs() < 0.02 * k.max(1.0), "k = {k}: mean {mean}");
            assert!((var - k).abs() < 0.05 * k.max(1.0), "k = {k}: var {var}");
        }
    }

    #[test]
    fn mle_recovers_the_shape_from_generated_samples() {
        let mut rng = stream(11, "test");
        for k in [0.3, 0.5, 1.0, 4.0] {
            let x: Vec<f64> = (0..50_000)
                .map(|_| 2.5 * ln_gamma_variate(k, &mut rng).exp())
                .collect();
            let fitted = fit_shape(&x).unwrap();
            assert!((fitted - k).abs() < 0.03 * k, "k = {k}: fitted {fitted}");
        }
        assert_eq!(fit_shape(&[0.0, 1.0]), None);
        assert_eq!(fit_shape(&[2.0, 2.0, 2.0]), None);
    }
}
