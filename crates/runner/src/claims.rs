//! The papers' claims (SPEC §5), declared next to the experiments that test them, and their
//! verdicts, computed from the stored runs by rules written here once.
//!
//! An experiment file states a claim as `[[claims]]`: its SPEC id, the statement, the paper, the
//! metric, the claimed direction, optionally the paper's effect size, and what is compared —
//! `pairs` of arms (the first claimed higher, or lower, than the second), or a `trend` of one arm
//! over a swept key (each sweep point against the previous one, only `within` the domain the
//! paper states the claim for when it states one). Every pair of groups becomes a
//! [`Comparison`]: the difference of means over seeds with its 95% Welch interval and raw Welch
//! p-value, Holm-adjusted over the claim's comparisons. Pairs are matched on achieved sparsity
//! (`match_on`, default `weight_sparsity`, within `tolerance`, default 0.5 points): a pair whose
//! sides differ by more is reported as unmatched and never enters a verdict.
//!
//! The verdict rules (SPEC §5, α = 0.05), per setting and then across settings:
//!
//! - **holds**: the claimed direction at every compared point, each significant after Holm;
//! - **in direction only**: the claimed direction at every point, not all significant;
//! - **does not hold at our scale**: a significant difference against the claim at some point,
//!   or a 95% interval that lies wholly short of the paper's effect size where one is given
//!   (ours: an interval beyond it does not count against the claim);
//! - **split**: holds (or points the claimed way) in some settings or at some points and not in
//!   others; the verdict says which;
//! - **untested**: no matched comparison (or no ablation declares the claim); it says why.
//!
//! A claim that a prediction agrees with the measurement (`agreement`) has rules of its own:
//! [`crate::agreement`].

use crate::aggregate::{Group, RunResult, groups};
use crate::agreement::Agreement;
use crate::record::metric_info;
use serde::{Deserialize, Serialize};
use sparselab_metrics::stats::{holm, summarize, welch, welch_interval};

/// The level of every test.
pub const ALPHA: f64 = 0.05;

/// The default tolerance of a match: half a point of sparsity.
pub const DEFAULT_TOLERANCE: f64 = 0.005;

/// Which way a claim points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The first arm of a pair (a later sweep point of a trend) is claimed higher.
    Higher,
    /// ... lower.
    Lower,
}

impl Direction {
    /// The direction as a sentence says it.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }

    fn sign(self) -> f64 {
        match self {
            Direction::Higher => 1.0,
            Direction::Lower => -1.0,
        }
    }
}

/// Two arms compared, the first claimed to differ from the second in the claim's direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    /// `[claimed, baseline]`.
    pub arms: [String; 2],
    /// The model or setting the pair stands for (verdicts are split by it).
    #[serde(default)]
    pub setting: Option<String>,
}

/// One arm over a swept key: each sweep point against the previous one (in increasing value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trend {
    /// The arm.
    pub arm: String,
    /// The swept key (e.g. `optimizer.mu`).
    pub over: String,
    /// The model or setting.
    #[serde(default)]
    pub setting: Option<String>,
    /// Only sweep points in this closed interval `[low, high]`: the domain the paper states the
    /// claim for (SPEC §1.2's `1 < p ≤ 2` for L1). Points outside it are still trained and
    /// tabled; they do not enter the verdict.
    #[serde(default)]
    pub within: Option<[f64; 2]>,
}

impl Trend {
    /// Whether the sweep point `x` lies in the claim's domain.
    pub fn admits(&self, x: f64) -> bool {
        self.within.is_none_or(|[low, high]| low <= x && x <= high)
    }
}

/// How the two sides of a comparison are matched.
fn default_match_on() -> String {
    "weight_sparsity".into()
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

/// A claim as an experiment file states it (`[[claims]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Its id in SPEC §5 (`S1`, `R2`, ...).
    pub id: String,
    /// The statement.
    pub claim: String,
    /// The paper it comes from.
    pub paper: String,
    /// The metric compared (a key of the metric table).
    #[serde(default = "default_metric")]
    pub metric: String,
    /// The claimed direction.
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// The paper's effect size, in the metric's table units (points for accuracy).
    #[serde(default)]
    pub effect: Option<f64>,
    /// The metric two sides are matched on (`"sweep"`: at the same sweep point, unmatched).
    #[serde(default = "default_match_on")]
    pub match_on: String,
    /// How far apart matched sides may be (in the metric's stored units: 0.005 = half a point).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Arms compared in pairs.
    #[serde(default)]
    pub pairs: Vec<Pair>,
    /// Arms followed over a swept key.
    #[serde(default)]
    pub trends: Vec<Trend>,
    /// Only points of the claimed arm at most this sparse (weight sparsity, stored units): a
    /// claim made for moderate sparsity.
    #[serde(default)]
    pub max_sparsity: Option<f64>,
    /// A prediction claimed to agree with the measurement, instead of pairs or trends.
    #[serde(default)]
    pub agreement: Option<Agreement>,
    /// Why no ablation tests it (a claim with neither pairs nor trends).
    #[serde(default)]
    pub untested: Option<String>,
}

fn default_metric() -> String {
    "test_accuracy".into()
}

fn default_direction() -> Direction {
    Direction::Higher
}

impl Claim {
    /// The arm names the claim refers to.
    pub fn arms(&self) -> Vec<&str> {
        let pairs = self
            .pairs
            .iter()
            .flat_map(|p| p.arms.iter().map(String::as_str));
        let predicted = (self.agreement.iter()).flat_map(|a| a.arms.iter().map(|a| a.arm.as_str()));
        pairs
            .chain(self.trends.iter().map(|t| t.arm.as_str()))
            .chain(predicted)
            .collect()
    }
}

/// One comparison of two groups of runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The setting it belongs to.
    pub setting: String,
    /// `claimed vs baseline` with their sweep points.
    pub label: String,
    /// `mean(claimed) − mean(baseline)` in table units.
    pub delta: f64,
    /// Half-width of its 95% Welch interval (`None`: fewer than 2 seeds a side or no variance).
    pub ci: Option<f64>,
    /// Welch's two-sided p-value.
    pub p: Option<f64>,
    /// Holm-adjusted over the claim's matched comparisons.
    pub p_holm: Option<f64>,
    /// The two sides' matched metric (table units), when matched on a metric.
    pub matched_on: Option<(f64, f64)>,
    /// Whether the sides are within tolerance (always true when matched by sweep point).
    pub matched: bool,
}

/// A verdict of SPEC §5.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "snake_case")]
pub enum Verdict {
    /// Significant in the claimed direction at every point.
    Holds,
    /// The claimed direction everywhere, not all significant.
    InDirectionOnly,
    /// Significant against the claim somewhere, or short of the paper's effect.
    DoesNotHold(String),
    /// Differs between settings or points (which).
    Split(String),
    /// Nothing to compare (why).
    Untested(String),
}

impl Verdict {
    /// As the report writes it.
    pub fn label(&self) -> String {
        match self {
            Verdict::Holds => "holds".into(),
            Verdict::InDirectionOnly => "in direction only".into(),
            Verdict::DoesNotHold(why) => format!("does not hold at our scale ({why})"),
            Verdict::Split(why) => format!("split ({why})"),
            Verdict::Untested(why) => format!("untested ({why})"),
        }
    }
}

/// The verdict on comparisons of one claim, `effect` the paper's. Within a setting, unmatched
/// comparisons are ignored; a setting with none matched is untested, and says so in the verdict
/// rather than letting the other settings speak for the whole claim.
pub fn verdict(comparisons: &[Comparison], direction: Direction, effect: Option<f64>) -> Verdict {
    if !comparisons.iter().any(|c| c.matched) {
        return Verdict::Untested(if comparisons.is_empty() {
            "no runs to compare".into()
        } else {
            unmatched_reason(comparisons.iter())
        });
    }
    by_setting(comparisons, |of| {
        let matched: Vec<&Comparison> = of.iter().copied().filter(|c| c.matched).collect();
        if matched.is_empty() {
            Verdict::Untested(unmatched_reason(of.into_iter()))
        } else {
            setting_verdict(&matched, direction, effect)
        }
    })
}

/// `rule` applied to each setting's comparisons (settings in order of first appearance), the
/// verdicts then [`combine`]d.
pub(crate) fn by_setting(
    comparisons: &[Comparison],
    rule: impl Fn(Vec<&Comparison>) -> Verdict,
) -> Verdict {
    let mut settings: Vec<&str> = Vec::new();
    for c in comparisons {
        if !settings.contains(&c.setting.as_str()) {
            settings.push(&c.setting);
        }
    }
    combine(
        settings
            .iter()
            .map(|s| {
                (
                    *s,
                    rule(comparisons.iter().filter(|c| c.setting == *s).collect()),
                )
            })
            .collect(),
    )
}

/// One verdict from each setting's: the common one when all agree; "does not hold" when every
/// setting is against the claim, each for its own reason; else "split", naming each setting's.
fn combine(per_setting: Vec<(&str, Verdict)>) -> Verdict {
    let Some((_, first)) = per_setting.first() else {
        return Verdict::Untested("no runs to compare".into());
    };
    if per_setting.iter().all(|(_, v)| v == first) {
        return first.clone();
    }
    // Against the claim in every setting, each for its own reason: it does not hold, and each
    // setting says why (a "split" would suggest that some setting supports it).
    let against: Vec<String> = per_setting
        .iter()
        .filter_map(|(s, v)| match v {
            Verdict::DoesNotHold(why) => Some(format!("{s}: {why}")),
            _ => None,
        })
        .collect();
    if against.len() == per_setting.len() {
        return Verdict::DoesNotHold(against.join("; "));
    }
    let parts: Vec<String> = per_setting
        .iter()
        .map(|(s, v)| format!("{s}: {}", v.label()))
        .collect();
    Verdict::Split(parts.join("; "))
}

/// Why comparisons that exist match nowhere: the closest pair and where each side stands, so
/// that a reader sees how far apart the methods landed (a method that stalls short of its target
/// shows here rather than as a bare "untested").
fn unmatched_reason<'a>(comparisons: impl Iterator<Item = &'a Comparison>) -> String {
    let closest = comparisons
        .filter_map(|c| c.matched_on.map(|(a, b)| (c, a, b)))
        .min_by(|x, y| (x.1 - x.2).abs().total_cmp(&(y.1 - y.2).abs()));
    match closest {
        Some((c, a, b)) => format!(
            "no comparison within the matching tolerance; the closest, {}, stands at {a:.2} vs {b:.2}",
            c.label
        ),
        None => "no comparison within the matching tolerance".into(),
    }
}

/// The verdict within one setting.
fn setting_verdict(of: &[&Comparison], direction: Direction, effect: Option<f64>) -> Verdict {
    let sign = direction.sign();
    let significant = |c: &Comparison| c.p_holm.is_some_and(|p| p <= ALPHA);
    if let Some(c) = of.iter().find(|c| sign * c.delta < 0.0 && significant(c)) {
        return Verdict::DoesNotHold(format!(
            "{}: {:+.2}, Holm p {}",
            c.label,
            c.delta,
            p_text(c.p_holm)
        ));
    }
    if let Some(effect) = effect
        && let Some(c) = of
            .iter()
            .find(|c| c.ci.is_some_and(|ci| sign * c.delta + ci < effect))
    {
        return Verdict::DoesNotHold(format!(
            "{}: {:+.2} ± {:.2} excludes the paper's {effect:+.2}",
            c.label,
            c.delta,
            c.ci.unwrap_or(0.0)
        ));
    }
    let in_direction = of.iter().filter(|c| sign * c.delta > 0.0).count();
    if in_direction == of.len() {
        if of.iter().all(|c| significant(c)) {
            Verdict::Holds
        } else {
            Verdict::InDirectionOnly
        }
    } else if in_direction == 0 {
        Verdict::DoesNotHold("against the claim at every point, not significantly".into())
    } else {
        Verdict::Split(format!(
            "in the claimed direction at {in_direction} of {} points",
            of.len()
        ))
    }
}

/// A p-value as tables write it, to two significant digits (`0.34`, `0.0046`, `3e-5`).
pub fn p_text(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p >= 0.01 => format!("{p:.2}"),
        Some(p) if p >= 1e-3 => format!("{p:.4}"),
        Some(p) => format!("{p:.0e}"),
    }
}

/// A claim's comparisons and verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluated {
    /// The claim.
    pub claim: Claim,
    /// The ablation that tests it (`None`: declared untested).
    pub ablation: Option<String>,
    /// Every comparison, matched or not.
    pub comparisons: Vec<Comparison>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Evaluates `claim` on an ablation's stored `results`.
pub fn evaluate(claim: &Claim, ablation: &str, results: &[RunResult]) -> Evaluated {
    let all = groups(results);
    let mut comparisons = Vec::new();
    for pair in &claim.pairs {
        let setting = pair.setting.clone().unwrap_or_default();
        let of = |arm: &str| -> Vec<&Group<'_>> { all.iter().filter(|g| g.arm == arm).collect() };
        let (claimed, baseline) = (of(&pair.arms[0]), of(&pair.arms[1]));
        let in_range = |a: &Group<'_>| {
            claim
                .max_sparsity
                .is_none_or(|max| a.summary("weight_sparsity").is_some_and(|s| s.mean <= max))
        };
        for a in claimed.into_iter().filter(|a| in_range(a)) {
            if let Some(b) = partner(claim, a, &baseline) {
                comparisons.push(compare(claim, &setting, a, b));
            }
        }
    }
    for trend in &claim.trends {
        let setting = trend.setting.clone().unwrap_or_default();
        let mut points: Vec<(&Group<'_>, f64)> = all
            .iter()
            .filter(|g| g.arm == trend.arm)
            .filter_map(|g| Some((g, g.sweep.get(&trend.over)?.as_f64()?)))
            .filter(|&(_, x)| trend.admits(x))
            .collect();
        points.sort_by(|a, b| a.1.total_cmp(&b.1));
        for w in points.windows(2) {
            let mut c = compare(claim, &setting, w[1].0, w[0].0);
            // A trend compares points of one arm: they are matched by construction.
            c.matched = true;
            c.matched_on = None;
            comparisons.push(c);
        }
    }
    if let Some(agreement) = &claim.agreement {
        comparisons.extend(crate::agreement::comparisons(agreement, results));
    }
    let matched: Vec<usize> = (0..comparisons.len())
        .filter(|&i| comparisons[i].matched && comparisons[i].p.is_some())
        .collect();
    let adjusted = holm(
        &matched
            .iter()
            .map(|&i| comparisons[i].p.unwrap_or(1.0))
            .collect::<Vec<_>>(),
    );
    for (i, p) in matched.into_iter().zip(adjusted) {
        comparisons[i].p_holm = Some(p);
    }
    let verdict = match &claim.untested {
        Some(why) if comparisons.is_empty() => Verdict::Untested(why.clone()),
        _ => match &claim.agreement {
            Some(agreement) => crate::agreement::verdict(&comparisons, agreement.bound),
            None => verdict(&comparisons, claim.direction, claim.effect),
        },
    };
    Evaluated {
        claim: claim.clone(),
        ablation: Some(ablation.to_string()),
        comparisons,
        verdict,
    }
}

/// The baseline group `a` is compared with: at the same sweep point when the claim matches on
/// sweep points, else the group whose mean `match_on` is closest to `a`'s.
fn partner<'a>(claim: &Claim, a: &Group<'_>, baseline: &[&'a Group<'a>]) -> Option<&'a Group<'a>> {
    if claim.match_on == "sweep" {
        return baseline
            .iter()
            .copied()
            .find(|b| b.at_point_of(a) || a.at_point_of(b));
    }
    let target = a.summary(&claim.match_on)?.mean;
    baseline
        .iter()
        .copied()
        .filter_map(|b| Some((b, (b.summary(&claim.match_on)?.mean - target).abs())))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(b, _)| b)
}

/// The comparison of groups `a` (claimed) and `b` (baseline) on the claim's metric.
fn compare(claim: &Claim, setting: &str, a: &Group<'_>, b: &Group<'_>) -> Comparison {
    let scale = metric_info(&claim.metric).map_or(1.0, |m| m.scale);
    let (xa, xb) = (a.values(&claim.metric), b.values(&claim.metric));
    let delta = match (summarize(&xa), summarize(&xb)) {
        (Some(sa), Some(sb)) => (sa.mean - sb.mean) * scale,
        _ => f64::NAN,
    };
    let (matched_on, matched) = if claim.match_on == "sweep" {
        (None, true)
    } else {
        let m_scale = metric_info(&claim.match_on).map_or(1.0, |m| m.scale);
        match (a.summary(&claim.match_on), b.summary(&claim.match_on)) {
            (Some(ma), Some(mb)) => (
                Some((ma.mean * m_scale, mb.mean * m_scale)),
                (ma.mean - mb.mean).abs() <= claim.tolerance,
            ),
            _ => (None, false),
        }
    };
    Comparison {
        setting: setting.to_string(),
        label: format!("{} vs {}", a.display(), b.display()),
        delta,
        ci: welch_interval(&xa, &xb).map(|(_, half)| half * scale),
        p: welch(&xa, &xb).map(|(_, _, p)| p),
        p_holm: None,
        matched_on,
        matched: matched && delta.is_finite(),
    }
}

/// Comparisons built by hand, for tests of the verdict rules.
#[cfg(test)]
pub(crate) mod fixture {
    use super::Comparison;

    /// A matched comparison in `setting` with difference `delta ± ci` and Holm p `p_holm`.
    pub(crate) fn cmp(setting: &str, delta: f64, ci: f64, p_holm: f64) -> Comparison {
        Comparison {
            setting: setting.into(),
            label: format!("{setting} {delta}"),
            delta,
            ci: Some(ci),
            p: Some(p_holm),
            p_holm: Some(p_holm),
            matched_on: None,
            matched: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::cmp;
    use super::*;

    /// Comparisons that match nowhere name the closest pair and where each side stands.
    #[test]
    fn unmatched_comparisons_name_the_closest_pair() {
        let apart = |label: &str, a: f64, b: f64| Comparison {
            label: label.into(),
            matched_on: Some((a, b)),
            matched: false,
            ..cmp("", 1.0, 0.5, 0.01)
        };
        let v = verdict(
            &[apart("far", 76.7, 98.0), apart("near", 76.7, 90.0)],
            Direction::Higher,
            None,
        );
        assert_eq!(
            v,
            Verdict::Untested(
                "no comparison within the matching tolerance; the closest, near, stands at 76.70 vs 90.00"
                    .into()
            )
        );
    }

    /// A setting whose comparisons all miss the tolerance is untested, and the verdict says so
    /// instead of letting the matched settings stand for the whole claim.
    #[test]
    fn a_setting_with_nothing_matched_is_named_untested() {
        let apart = Comparison {
            matched_on: Some((88.9, 73.2)),
            matched: false,
            ..cmp("vs ProxSGD", 1.0, 0.5, 0.01)
        };
        let v = verdict(
            &[apart, cmp("vs ProxSSI", 1.0, 0.5, 0.01)],
            Direction::Higher,
            None,
        );
        let Verdict::Split(why) = v else {
            panic!("expected a split, got {v:?}");
        };
        assert!(
            why.starts_with("vs ProxSGD: untested (no comparison within"),
            "{why}"
        );
        assert!(why.ends_with("vs ProxSSI: holds"), "{why}");
    }

    /// A trend's domain is closed at both ends; without one it admits every point.
    #[test]
    fn a_trend_admits_the_points_of_its_domain() {
        let trend = |within| Trend {
            arm: "lp".into(),
            over: "optimizer.p".into(),
            setting: None,
            within,
        };
        let domain = trend(Some([1.0, 2.0]));
        assert!(domain.admits(1.07) && domain.admits(2.0) && domain.admits(1.0));
        assert!(!domain.admits(3.0) && !domain.admits(0.99));
        assert!(trend(None).admits(4.0));
    }

    /// Each rule of SPEC §5 on constructed comparisons.
    #[test]
    fn each_verdict_rule() {
        use Direction::{Higher, Lower};
        let v = |c: &[Comparison], d, e| verdict(c, d, e);
        // Significant in direction everywhere.
        assert_eq!(
            v(
                &[cmp("", 1.0, 0.5, 0.01), cmp("", 2.0, 0.5, 0.02)],
                Higher,
                None
            ),
            Verdict::Holds
        );
        // In direction, one not significant.
        assert_eq!(
            v(
                &[cmp("", 1.0, 0.5, 0.01), cmp("", 0.2, 0.5, 0.3)],
                Higher,
                None
            ),
            Verdict::InDirectionOnly
        );
        // Significant against the claim at one point.
        assert!(matches!(
            v(
                &[cmp("", 1.0, 0.5, 0.01), cmp("", -1.0, 0.5, 0.01)],
                Higher,
                None
            ),
            Verdict::DoesNotHold(_)
        ));
        // The interval lies wholly short of the paper's effect (+1.0): 0.2 + 0.3 < 1.0.
        assert!(matches!(
            v(&[cmp("", 0.2, 0.3, 0.04)], Higher, Some(1.0)),
            Verdict::DoesNotHold(_)
        ));
        // ... but one that reaches it, or lies beyond it, does not count against the claim.
        assert_eq!(
            v(&[cmp("", 0.8, 0.3, 0.01)], Higher, Some(1.0)),
            Verdict::Holds
        );
        assert_eq!(
            v(&[cmp("", 3.0, 0.3, 0.01)], Higher, Some(1.0)),
            Verdict::Holds
        );
        // The direction is the claim's.
        assert_eq!(v(&[cmp("", -1.0, 0.5, 0.01)], Lower, None), Verdict::Holds);
        // Mixed directions within a setting, none significant: split by points.
        assert!(matches!(
            v(
                &[cmp("", 1.0, 2.0, 0.3), cmp("", -1.0, 2.0, 0.3)],
                Higher,
                None
            ),
            Verdict::Split(_)
        ));
        // Settings that disagree: split, naming each.
        let Verdict::Split(why) = v(
            &[cmp("MLP", 1.0, 0.5, 0.01), cmp("LeNet-5", 0.5, 0.9, 0.4)],
            Higher,
            None,
        ) else {
            panic!("settings disagree");
        };
        assert!(
            why.contains("MLP: holds") && why.contains("LeNet-5: in direction only"),
            "{why}"
        );
        // Settings against the claim each for its own reason: it does not hold, naming both.
        let Verdict::DoesNotHold(why) = v(
            &[cmp("xRDA", -1.0, 0.5, 0.01), cmp("RMDA", -2.0, 0.5, 0.001)],
            Higher,
            None,
        ) else {
            panic!("against the claim in both settings");
        };
        assert!(why.contains("xRDA: ") && why.contains("RMDA: "), "{why}");
        // Nothing matched: untested.
        let mut unmatched = cmp("", 1.0, 0.5, 0.01);
        unmatched.matched = false;
        assert!(matches!(
            v(&[unmatched], Higher, None),
            Verdict::Untested(_)
        ));
        assert!(matches!(v(&[], Higher, None), Verdict::Untested(_)));
    }
}
