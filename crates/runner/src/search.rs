//! Choosing what an arm leaves open before its seeds run: the strength that reaches a target
//! sparsity (`target`), and the values of a tuning grid (`tune`), each by training seed 0 on the
//! full budget. Every run a search trains is an ordinary run in the store, so a search that is
//! interrupted resumes where it stopped and a finished one is never repeated: it replays the same
//! probes, and finds each one stored.
//!
//! **The target search** is regula falsi with the Illinois modification on the logarithm of the
//! knob (a penalty's λ, gRDA's c): the sparsity a strength reaches grows with it smoothly over
//! decades, so interpolating between the measured sides of the bracket lands near the target in
//! fewer probes than bisection, and Illinois' halving of the retained side keeps the bracket from
//! shrinking at one end only. Until both sides are measured it bisects the log range. It
//! assumes a stronger knob gives a sparser network (true of every strength here); it stops at
//! the first probe within tolerance and fails, naming the closest value reached, after
//! `probes` runs. Each probe is a whole training run, since what a strength reaches depends on
//! the whole trajectory. A topology with a target of its own (`topology.sparsity`) is set to it
//! without a search.
//!
//! Every decision reads the probes' stored records, also right after training one, so a search
//! replayed by another process (a resumed `ablate`, `plot`, `report`) takes the same path and
//! finds every probe stored.
//!
//! **The tuning grid** is tried value by value (each with its own target search), and the value
//! of best validation accuracy at the final sparsity ([`crate::record::best_validation`]) is
//! chosen: the test split is never looked at.

use crate::aggregate::RunResult;
use crate::experiment::{PlannedRun, RunConfig, Search, Target};
use crate::record::{Status, best_validation};
use crate::resolve::{Resolved, resolve};
use crate::run_id::run_id;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One run a search trained.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// The grid point it tried.
    pub tune: BTreeMap<String, Value>,
    /// The knob's value, when searching a target.
    pub knob: Option<f64>,
    /// The target metric it reached (`None`: the run diverged).
    pub reached: Option<f64>,
    /// Its validation accuracy at the selected epoch.
    pub val_accuracy: Option<f64>,
    /// Its run id.
    pub run: String,
}

/// What a search chose, and the runs at the choice.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    /// The arm.
    pub arm: String,
    /// Its sweep point.
    pub sweep: BTreeMap<String, Value>,
    /// The chosen grid point (empty: nothing tuned).
    pub tune: BTreeMap<String, Value>,
    /// The knob and its value (a target arm).
    pub knob: Option<(String, f64)>,
    /// The target and the metric seed 0 reached at the choice.
    pub target: Option<(Target, Option<f64>)>,
    /// The grid's size (1: nothing tuned).
    pub grid: usize,
    /// Every run the search trained, in order.
    pub probes: Vec<Probe>,
    /// Every seed at the choice (seed 0 is one of the probes).
    #[serde(skip)]
    pub runs: Vec<PlannedRun>,
}

/// Gives a planned run's result: trains it if need be (`ablate`), or finds it stored (`plot`,
/// which gives `None` for a run not trained yet).
pub type Oracle<'a> = dyn FnMut(&PlannedRun) -> anyhow::Result<Option<RunResult>> + 'a;

/// The run of `search` at grid point `tune` and knob value `knob`, seed `seed`.
fn planned(
    search: &Search,
    tune: &BTreeMap<String, Value>,
    knob: Option<(&str, f64)>,
    seed: u64,
) -> anyhow::Result<PlannedRun> {
    let mut tables = search.tables.clone();
    for (key, value) in tune {
        tables.set(key, value.clone()).map_err(anyhow::Error::msg)?;
    }
    if let Some((key, value)) = knob {
        tables.set(key, json!(value)).map_err(anyhow::Error::msg)?;
    }
    let Resolved { method, train, .. } = resolve(&tables, &search.prefix)?;
    let config = RunConfig {
        data: search.data.clone(),
        train,
        method,
        seed,
    };
    Ok(PlannedRun {
        id: run_id(&config),
        arm: search.arm.clone(),
        label: search.label.clone(),
        sweep: search.sweep.clone(),
        config,
    })
}

/// The probe record of `result`.
fn probe(
    tune: &BTreeMap<String, Value>,
    knob: Option<f64>,
    target: Option<&Target>,
    result: &RunResult,
) -> Probe {
    let finished = result.outcome.status == Status::Finished;
    Probe {
        tune: tune.clone(),
        knob,
        reached: target
            .filter(|_| finished)
            .and_then(|t| result.outcome.metric(&t.metric)),
        val_accuracy: best_validation(&result.epochs).and_then(|e| e.val_accuracy),
        run: result.run.id.clone(),
    }
}

/// `value` rounded to `digits` significant decimal digits.
fn significant(value: f64, digits: usize) -> f64 {
    format!("{value:.*e}", digits.saturating_sub(1))
        .parse()
        .unwrap_or(value)
}

/// The knob value that reaches `target` at grid point `tune`, with seed 0's run there; `None`
/// when the oracle lacks a probe.
fn calibrate(
    search: &Search,
    (target, knob): (&Target, &str),
    tune: &BTreeMap<String, Value>,
    oracle: &mut Oracle<'_>,
    probes: &mut Vec<Probe>,
) -> anyhow::Result<Option<(f64, RunResult)>> {
    if knob == "topology.sparsity" {
        let run = planned(search, tune, Some((knob, target.value)), 0)?;
        let Some(r) = oracle(&run)? else {
            return Ok(None);
        };
        probes.push(probe(tune, Some(target.value), Some(target), &r));
        return Ok(Some((target.value, r)));
    }
    let [lo, hi] = target.range;
    // Sides of the bracket in ln(knob), with the measured excess of sparsity over the target.
    let (mut a, mut b) = (lo.ln(), hi.ln());
    let (mut fa, mut fb): (Option<f64>, Option<f64>) = (None, None);
    let mut kept = 0i8;
    let mut closest: Option<(f64, f64)> = None;
    for _ in 0..target.probes {
        let x = match (fa, fb) {
            (Some(fa), Some(fb)) if fb > fa => (a * fb - b * fa) / (fb - fa),
            _ => 0.5 * (a + b),
        };
        // The knob as it is written into the run's configuration: rounded, so that the last
        // bits of the interpolation (which depend on how the measured sparsities were obtained)
        // cannot change a probe's run id, and readable in the table.
        let value = significant(x.exp(), 6);
        let x = value.ln();
        let run = planned(search, tune, Some((knob, value)), 0)?;
        let Some(r) = oracle(&run)? else {
            return Ok(None);
        };
        let p = probe(tune, Some(value), Some(target), &r);
        // A run that diverged is taken as too strong: search below it.
        let excess = p.reached.map_or(f64::INFINITY, |s| s - target.value);
        probes.push(p);
        if excess.abs() <= target.tolerance {
            return Ok(Some((value, r)));
        }
        if excess.is_finite()
            && closest.is_none_or(|(_, c)| excess.abs() < (c - target.value).abs())
        {
            closest = Some((value, excess + target.value));
        }
        if excess < 0.0 {
            (a, fa) = (x, Some(excess));
            if kept == -1 {
                fb = fb.map(|f| f / 2.0);
            }
            kept = -1;
        } else {
            (b, fb) = (x, Some(excess.min(1.0)));
            if kept == 1 {
                fa = fa.map(|f| f / 2.0);
            }
            kept = 1;
        }
    }
    anyhow::bail!(
        "{}.target: no {knob} in [{lo:e}, {hi:e}] reached {} {} ± {} in {} probes; {}",
        search.prefix,
        target.metric,
        target.value,
        target.tolerance,
        target.probes,
        closest.map_or("every probe diverged".into(), |(v, s)| format!(
            "the closest reached {s:.4} at {knob} = {v:.3e} (widen `range` or raise `probes`, or choose a reachable value)"
        ))
    )
}

/// Runs `search` (training its probes through `oracle`); `None` when the oracle lacks a probe.
pub fn choose(search: &Search, oracle: &mut Oracle<'_>) -> anyhow::Result<Option<Choice>> {
    let grid: Vec<BTreeMap<String, Value>> = if search.grid.is_empty() {
        vec![BTreeMap::new()]
    } else {
        search.grid.clone()
    };
    /// A grid point's outcome: its knob value, seed 0's validation accuracy and reached metric.
    struct Candidate {
        point: BTreeMap<String, Value>,
        knob: Option<f64>,
        val: f64,
        reached: Option<f64>,
    }
    let mut probes = Vec::new();
    let mut best: Option<Candidate> = None;
    for point in &grid {
        let (knob, result) = match &search.target {
            Some((target, knob)) => {
                match calibrate(search, (target, knob), point, oracle, &mut probes)? {
                    Some((value, r)) => (Some(value), r),
                    None => return Ok(None),
                }
            }
            None => {
                let run = planned(search, point, None, 0)?;
                let Some(r) = oracle(&run)? else {
                    return Ok(None);
                };
                probes.push(probe(point, None, None, &r));
                (None, r)
            }
        };
        let val = best_validation(&result.epochs)
            .and_then(|e| e.val_accuracy)
            .unwrap_or(f64::NEG_INFINITY);
        let reached = probes.last().and_then(|p| p.reached);
        if best.as_ref().is_none_or(|b| val > b.val) {
            best = Some(Candidate {
                point: point.clone(),
                knob,
                val,
                reached,
            });
        }
    }
    let Candidate {
        point: tune,
        knob,
        reached,
        ..
    } = best.expect("a grid has at least one point");
    let knob = search
        .target
        .as_ref()
        .zip(knob)
        .map(|((_, k), v)| (k.clone(), v));
    let runs = (0..search.seeds as u64)
        .map(|seed| {
            planned(
                search,
                &tune,
                knob.as_ref().map(|(k, v)| (k.as_str(), *v)),
                seed,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Choice {
        arm: search.arm.clone(),
        sweep: search.sweep.clone(),
        tune,
        knob,
        target: search.target.as_ref().map(|(t, _)| (t.clone(), reached)),
        grid: grid.len(),
        probes,
        runs,
    }))
}

/// The Markdown lines a table adds about its searches.
pub fn markdown(choices: &[Choice]) -> String {
    if choices.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## How open hyperparameters were chosen\n\n\
         Each arm point below trained seed 0 first: a target sparsity is reached by searching \
         its knob (regula falsi on a log scale, every probe a full run), a tuning grid by picking \
         the value of best validation accuracy at the final sparsity; then every seed ran at the \
         choice.\n\n| arm | target | chosen | seed 0 reached | probes | grid |\n|---|---|---|---|---|---|\n",
    );
    for c in choices {
        let point = c
            .sweep
            .iter()
            .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let arm = if point.is_empty() {
            c.arm.clone()
        } else {
            format!("{} ({point})", c.arm)
        };
        let target = c.target.as_ref().map_or("–".into(), |(t, _)| {
            format!("{} {} ± {}", t.metric, t.value, t.tolerance)
        });
        let mut chosen: Vec<String> = c.tune.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        if let Some((k, v)) = &c.knob {
            chosen.push(format!("{k} = {v:.4e}"));
        }
        let reached = c
            .target
            .as_ref()
            .and_then(|(_, r)| *r)
            .map_or("–".into(), |r| format!("{r:.4}"));
        let tried: Vec<String> = c
            .probes
            .iter()
            .map(|p| {
                let at: String = p
                    .tune
                    .iter()
                    .map(|(k, v)| format!("{}={v}: ", k.rsplit('.').next().unwrap_or(k)))
                    .collect();
                match (p.knob, p.reached) {
                    (Some(k), Some(r)) => format!("{at}{k:.2e} → {r:.3}"),
                    (Some(k), None) => format!("{at}{k:.2e} → diverged"),
                    _ => format!("{at}val {:.4}", p.val_accuracy.unwrap_or(f64::NAN)),
                }
            })
            .collect();
        out.push_str(&format!(
            "| {arm} | {target} | {} | {reached} | {} | {} |\n",
            chosen.join(", "),
            tried.join("; "),
            c.grid
        ));
    }
    out
}
