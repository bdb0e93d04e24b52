//! Timing statistics shared by every section: criterion's estimates, medians, and ratios
//! measured in alternating rounds.
//!
//! The machines this runs on are shared, so a ratio of two cases is measured in alternating
//! rounds (baseline, case, baseline, case, …: drift hits both alike), each round's value a median
//! or a mean over its steps, and the ratio the median over rounds of the rounds' ratios.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// Criterion's estimate of one benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean time per iteration (seconds).
    pub mean: f64,
    /// 95% interval of the mean (seconds).
    pub ci95: (f64, f64),
    /// Median over criterion's samples of the time per iteration (seconds).
    pub median: f64,
}

/// Criterion's estimate for the benchmark named `{group}/{id}`: criterion stores it under
/// `{group}_{id}/new/estimates.json` (a `/` in a benchmark name becomes `_`).
pub fn read_estimate(dir: &Path, group: &str, id: &str) -> anyhow::Result<Estimate> {
    let path = dir
        .join(format!("{group}_{id}"))
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading criterion's estimate {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let ns = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN) * 1e-9;
    Ok(Estimate {
        mean: ns("/mean/point_estimate"),
        ci95: (
            ns("/mean/confidence_interval/lower_bound"),
            ns("/mean/confidence_interval/upper_bound"),
        ),
        median: ns("/median/point_estimate"),
    })
}

/// Paired ratios as `median× (lowest–highest)`.
pub fn spread(v: &[f64]) -> String {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    format!("{:.2}× ({lo:.2}–{hi:.2})", median(v))
}

/// The median of `v` (the mean of the two middle values for an even count; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Per round, `theirs / ours` for the rounds both sides measured (step times: against PyTorch,
/// sparselab's throughput ÷ PyTorch's; against a baseline, the case's step ÷ the baseline's).
pub fn round_ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    ours.iter().zip(theirs).map(|(o, t)| t / o).collect()
}

/// Counted rounds of each pairing with a baseline (SGD, the plain step): baseline, case,
/// baseline, case, …
pub const BASELINE_ROUNDS: usize = 7;

/// Per round, `case()` ÷ `baseline()`, called alternately: one round of each not counted, then
/// [`BASELINE_ROUNDS`] counted rounds, the baseline first.
pub fn alternating_ratios(
    mut baseline: impl FnMut() -> f64,
    mut case: impl FnMut() -> f64,
) -> Vec<f64> {
    baseline();
    case();
    let (mut baseline_times, mut case_times) = (Vec::new(), Vec::new());
    for _ in 0..BASELINE_ROUNDS {
        baseline_times.push(baseline());
        case_times.push(case());
    }
    round_ratios(&baseline_times, &case_times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use criterion::Criterion;
    use std::time::Duration;

    /// `read_estimate` finds what criterion itself wrote for a `group/id` benchmark name.
    #[test]
    fn reads_the_estimate_criterion_writes() {
        let dir = std::env::temp_dir().join(format!("sparselab-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Criterion::default()
            .output_directory(&dir)
            .warm_up_time(Duration::from_millis(10))
            .measurement_time(Duration::from_millis(50))
            .sample_size(10)
            .without_plots();
        c.bench_function("train_step/sgd+l1", |b| {
            b.iter(|| std::hint::black_box((0..100u64).sum::<u64>()))
        });
        let e = read_estimate(&dir, "train_step", "sgd+l1").expect("estimate");
        assert!(e.mean > 0.0 && e.mean.is_finite(), "{e:?}");
        assert!(e.ci95.0 <= e.mean && e.mean <= e.ci95.1, "{e:?}");
        assert!(e.median > 0.0 && e.median.is_finite(), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The median: the middle value for an odd count, the mean of the two middle values for an
    /// even one, whatever the order; NaN for none.
    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    /// The baseline and the case alternate, baseline first; the first call of each is not
    /// counted, and each counted ratio is the case's value over the baseline's in its round.
    #[test]
    fn alternating_ratios_pair_each_round_after_a_warm_up() {
        let calls = std::cell::RefCell::new(Vec::new());
        let mut n = 0.0;
        let ratios = alternating_ratios(
            || {
                n += 1.0;
                calls.borrow_mut().push('b');
                n
            },
            || {
                calls.borrow_mut().push('c');
                10.0 * calls.borrow().len() as f64
            },
        );
        let order: String = calls.borrow().iter().collect();
        assert_eq!(order, "bc".repeat(BASELINE_ROUNDS + 1));
        // Round r (1-based, after the warm-up): baseline r + 1, case 10·(2r + 2).
        let expected: Vec<f64> = (1..=BASELINE_ROUNDS)
            .map(|r| 10.0 * (2 * r + 2) as f64 / (r + 1) as f64)
            .collect();
        assert_eq!(ratios, expected);
    }

    /// A round's ratio is PyTorch's step over sparselab's in the same round, and one slowed
    /// round of either side does not move the median ratio.
    #[test]
    fn one_slowed_round_does_not_move_the_paired_ratio() {
        let ours = [2.0, 2.0, 2.0, 2.0, 2.0];
        let theirs = [3.0, 3.0, 3.0, 3.0, 3.0];
        assert_eq!(round_ratios(&ours, &theirs), vec![1.5; 5]);
        let slowed_theirs = [3.0, 3.0, 9.0, 3.0, 3.0];
        let slowed_ours = [2.0, 6.0, 2.0, 2.0, 2.0];
        assert_eq!(median(&round_ratios(&ours, &slowed_theirs)), 1.5);
        assert_eq!(median(&round_ratios(&slowed_ours, &theirs)), 1.5);
        // Rounds PyTorch did not measure are left out.
        assert_eq!(round_ratios(&ours, &theirs[..2]).len(), 2);
    }
}
