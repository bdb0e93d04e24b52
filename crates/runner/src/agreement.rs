//! Claims that a prediction agrees with what the runs measured (SPEC §5's L2: the expected
//! Hoyer sparsity under the gamma hypothesis, SPEC §1.2, against the measured one).
//!
//! A claim states it as `agreement = { predictor, bound, arms }`. Each point is one
//! sphere-constrained layer of one arm at one sweep point; its errors are, seed by seed,
//! `prediction − measured` (each seed's prediction uses that seed's weights, so the errors are
//! paired). A point agrees when two one-sided t-tests put its mean error inside `±bound`
//! ([`equivalence`]); p-values are Holm-adjusted over the claim's points like any other
//! comparison. The rules, per setting (arm) and then across settings as in
//! [`crate::claims::verdict`]:
//!
//! - **holds**: every point agrees, each significant after Holm;
//! - **does not hold at our scale**: some point's 95% interval of the error lies wholly outside
//!   `±bound` (the prediction misses by more than the bound beyond chance); it names the worst;
//! - **split**: neither: some points agree and the others cannot be told apart from the bound.
//!
//! SPEC gives no bound: the experiment file declares one and says why.

use crate::aggregate::{RunResult, groups};
use crate::claims::{Comparison, Verdict};
use crate::record::{SphereLayer, Status};
use serde::{Deserialize, Serialize};
use sparselab_metrics::stats::{equivalence, summarize};

/// Which prediction of `hoyer.md` the claim is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Predictor {
    /// The leading-order closed form under Gaussian gradients (`k = ½`, `a = 1/(2(p−1))`).
    ClosedForm,
    /// Its Monte Carlo estimate.
    MonteCarlo,
    /// Monte Carlo with `k` fitted to the layer's dual magnitudes and `a = 1/(p−1)`: the gamma
    /// hypothesis at the LpSGD fixed point.
    Fitted,
}

impl Predictor {
    /// Its name as tables write it.
    pub fn name(self) -> &'static str {
        match self {
            Predictor::ClosedForm => "closed form (Gaussian gradients)",
            Predictor::MonteCarlo => "Monte Carlo (Gaussian gradients)",
            Predictor::Fitted => "fitted-k Monte Carlo",
        }
    }

    fn of(self, layer: &SphereLayer) -> Option<f64> {
        match self {
            Predictor::ClosedForm => Some(layer.closed_form),
            Predictor::MonteCarlo => Some(layer.monte_carlo),
            Predictor::Fitted => layer.fitted,
        }
    }
}

/// One arm whose sphere-constrained layers are predicted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictedArm {
    /// The arm.
    pub arm: String,
    /// The model or setting it stands for (verdicts are split by it).
    #[serde(default)]
    pub setting: Option<String>,
}

/// A claim that a prediction agrees with the measurement (`agreement = { ... }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// The prediction.
    pub predictor: Predictor,
    /// How far the mean error may lie from 0 (in the metric's units; Hoyer is in [0, 1]).
    pub bound: f64,
    /// The arms whose layers are predicted.
    pub arms: Vec<PredictedArm>,
}

/// Every point of `agreement` on `results`: per arm, sweep point and constrained layer, the mean
/// error with its 95% interval and TOST p-value (`p_holm` is left to the caller).
pub fn comparisons(agreement: &Agreement, results: &[RunResult]) -> Vec<Comparison> {
    let mut out = Vec::new();
    let all = groups(results);
    for arm in &agreement.arms {
        for g in all.iter().filter(|g| g.arm == arm.arm) {
            let runs: Vec<&RunResult> = (g.runs.iter().copied())
                .filter(|r| r.outcome.status == Status::Finished)
                .collect();
            let Some(first) = runs.first() else { continue };
            for layer in &first.outcome.spheres {
                let errors: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.outcome.spheres.iter().find(|l| l.layer == layer.layer))
                    .filter_map(|l| Some(agreement.predictor.of(l)? - l.hoyer))
                    .collect();
                let test = equivalence(&errors, agreement.bound);
                let mean = summarize(&errors).map_or(0.0, |s| s.mean);
                out.push(Comparison {
                    setting: arm.setting.clone().unwrap_or_default(),
                    label: format!("{}: {}", g.display(), layer.layer),
                    delta: mean,
                    ci: test.map(|t| t.1),
                    p: test.map(|t| t.2),
                    p_holm: None,
                    matched_on: None,
                    matched: !errors.is_empty(),
                });
            }
        }
    }
    out
}

/// The verdict on the Holm-adjusted points of an agreement claim.
pub fn verdict(points: &[Comparison], bound: f64) -> Verdict {
    if points.is_empty() {
        return Verdict::Untested("no run has a sphere-constrained layer".into());
    }
    crate::claims::by_setting(points, |of| setting_verdict(&of, bound))
}

fn setting_verdict(of: &[&Comparison], bound: f64) -> Verdict {
    let beyond = |c: &&&Comparison| c.ci.is_some_and(|ci| c.delta.abs() - ci > bound);
    if let Some(worst) = of
        .iter()
        .filter(beyond)
        .max_by(|a, b| a.delta.abs().total_cmp(&b.delta.abs()))
    {
        let n = of.iter().filter(beyond).count();
        return Verdict::DoesNotHold(format!(
            "{n} of {} points miss by more than ±{bound}; the worst, {}, by {:+.3} ± {:.3}",
            of.len(),
            worst.label,
            worst.delta,
            worst.ci.unwrap_or(0.0)
        ));
    }
    let agree = of
        .iter()
        .filter(|c| c.p_holm.is_some_and(|p| p <= crate::claims::ALPHA))
        .count();
    if agree == of.len() {
        Verdict::Holds
    } else {
        Verdict::Split(format!(
            "within ±{bound} at {agree} of {} points after Holm; the others undecided",
            of.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::fixture::cmp as point;

    /// Every point inside the bound and significant: holds; one interval wholly outside: does not
    /// hold, naming it whatever the others do; an interval straddling the bound: split.
    #[test]
    fn the_rules_of_agreement() {
        let inside = point("a", 0.01, 0.01, 0.001);
        assert_eq!(verdict(std::slice::from_ref(&inside), 0.05), Verdict::Holds);
        let outside = point("a", -0.2, 0.05, 1.0);
        match verdict(&[inside.clone(), outside], 0.05) {
            Verdict::DoesNotHold(why) => assert!(why.contains("1 of 2 points"), "{why}"),
            v => panic!("{v:?}"),
        }
        let straddles = point("a", 0.06, 0.03, 0.6);
        assert!(matches!(
            verdict(&[inside, straddles], 0.05),
            Verdict::Split(_)
        ));
        assert!(matches!(verdict(&[], 0.05), Verdict::Untested(_)));
    }

    /// Stored runs become one point per arm and layer, whose error is the mean of the seeds'
    /// paired differences; a prediction off by a constant 0.02 agrees within 0.05 and misses
    /// within 0.01.
    #[test]
    fn points_pair_each_seeds_prediction_with_its_measurement() {
        use crate::aggregate::fixture::finished;
        let runs: Vec<RunResult> = [0.30, 0.33, 0.29, 0.35]
            .iter()
            .enumerate()
            .map(|(seed, &h)| {
                let noise = [0.001, -0.002, 0.0015, -0.0005][seed];
                let layer = serde_json::json!({"layer": "fc1.weight", "p": 1.5, "fan_in": 400,
                    "hoyer": h, "closed_form": 0.9, "monte_carlo": 0.9, "fitted_k": 1.0,
                    "fitted": h + 0.02 + noise});
                finished(
                    "lp",
                    seed as u64,
                    None,
                    serde_json::json!({"spheres": [layer]}),
                )
            })
            .collect();
        let claim = |bound| Agreement {
            predictor: Predictor::Fitted,
            bound,
            arms: vec![PredictedArm {
                arm: "lp".into(),
                setting: None,
            }],
        };
        let points = comparisons(&claim(0.05), &runs);
        assert_eq!(points.len(), 1);
        assert!((points[0].delta - 0.02).abs() < 1e-12, "{:?}", points[0]);
        assert!(points[0].label.ends_with("fc1.weight"));
        let judged = |bound| {
            let mut p = comparisons(&claim(bound), &runs);
            p[0].p_holm = p[0].p;
            verdict(&p, bound)
        };
        assert_eq!(judged(0.05), Verdict::Holds);
        assert!(matches!(judged(0.01), Verdict::DoesNotHold(_)));
        let gaussian = Agreement {
            predictor: Predictor::ClosedForm,
            ..claim(0.05)
        };
        assert!(comparisons(&gaussian, &runs)[0].delta > 0.5);
    }
}
