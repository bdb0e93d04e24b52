//! One leaderboard per model, dataset and training budget: every method of every ablation that
//! trained that model for that many epochs, at each standard sparsity it reaches (within half a
//! point), ranked by test accuracy, with Welch's test against the best, Holm-adjusted within the
//! level. Runs of different budgets are never ranked together.

use super::Stored;
use crate::aggregate::{RunResult, groups};
use crate::claims::{ALPHA, DEFAULT_TOLERANCE, p_text};
use crate::record::Status;
use crate::run_id::canonical_json;
use sparselab_metrics::stats::{Summary, holm, summarize, welch};
use std::fmt::Write;

/// The sparsity levels of a leaderboard (0: dense).
pub const LEVELS: [f64; 6] = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98];

/// One method at one level.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The ablation.
    pub ablation: String,
    /// The arm's label and sweep point.
    pub method: String,
    /// Test accuracy over seeds (fractions).
    pub accuracy: Summary,
    /// Weight sparsity over seeds (fractions).
    pub sparsity: Summary,
    /// Theoretical speedup (dense ÷ non-zero FLOPs) over seeds.
    pub theoretical: Option<Summary>,
    /// Measured inference speedup at batch 1 and 128 over seeds (runs that recorded it).
    pub measured: [Option<Summary>; 2],
    /// Welch's p against the best entry of the level, Holm-adjusted (`None` for the best).
    pub p_holm: Option<f64>,
}

/// The entries at one sparsity level, best first.
#[derive(Clone, Debug)]
pub struct Level {
    /// The level.
    pub target: f64,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// One model, dataset and budget.
pub struct Board {
    /// `model on data, N epochs`.
    pub title: String,
    /// The Pareto figure's file stem.
    pub file: String,
    /// The levels that have entries.
    pub levels: Vec<Level>,
    /// Its runs, each arm named `<ablation>/<arm>` (for the figure).
    pub results: Vec<RunResult>,
}

impl Board {
    /// The dense arms (no sweep, no sparsity): drawn as reference bands.
    pub fn reference_arms(&self) -> Vec<String> {
        let mut arms: Vec<String> = groups(&self.results)
            .iter()
            .filter(|g| g.sweep.is_empty())
            .filter(|g| g.summary("weight_sparsity").is_some_and(|s| s.mean == 0.0))
            .map(|g| g.arm.to_string())
            .collect();
        arms.dedup();
        arms
    }
}

/// What makes runs comparable: the model (with its non-default hyperparameters), the data and
/// the number of epochs.
fn budget(r: &RunResult) -> (String, String, usize) {
    let config = &r.run.config;
    (
        canonical_json(&config.method.model.identity()),
        config.data.name.clone(),
        config.train.epochs,
    )
}

/// A readable name of a model identity (`mlp-300-100`, `resmlp width=128 depth=4`).
fn model_name(identity: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(identity)
    else {
        return identity.to_string();
    };
    let name = map.get("name").and_then(|v| v.as_str()).unwrap_or("?");
    let rest: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "name")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name} {}", rest.join(" "))
    }
}

/// `name` as a file name: letters, digits and `-`, runs of anything else as one `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Every leaderboard of the stored ablations.
pub fn boards(stored: &[Stored]) -> Vec<Board> {
    let mut keys: Vec<(String, String, usize)> = stored
        .iter()
        .flat_map(|s| s.results.iter().map(budget))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| board(stored, &key))
        .collect()
}

fn board(stored: &[Stored], key: &(String, String, usize)) -> Option<Board> {
    let mut results = Vec::new();
    for s in stored {
        for r in s.results.iter().filter(|r| budget(r) == *key) {
            let mut r = r.clone();
            r.run.arm = format!("{}/{}", s.ablation.name, r.run.arm);
            r.run.label = format!("{} · {}", s.ablation.name, r.run.label);
            results.push(r);
        }
    }
    let mut levels = Vec::new();
    for target in LEVELS {
        let mut entries: Vec<(Entry, Vec<f64>)> = groups(&results)
            .iter()
            .filter(|g| g.runs.iter().all(|r| r.outcome.status == Status::Finished))
            .filter_map(|g| {
                let sparsity = g.summary("weight_sparsity")?;
                ((sparsity.mean - target).abs() <= DEFAULT_TOLERANCE).then_some(())?;
                let values = g.values("test_accuracy");
                let (ablation, _) = g.arm.split_once('/')?;
                let method = g
                    .display()
                    .split_once(" · ")
                    .map_or(g.display(), |(_, m)| m.to_string());
                Some((
                    Entry {
                        ablation: ablation.to_string(),
                        method,
                        accuracy: summarize(&values)?,
                        sparsity,
                        theoretical: g.summary("speedup"),
                        measured: [
                            g.summary("measured_speedup_b1"),
                            g.summary("measured_speedup_b128"),
                        ],
                        p_holm: None,
                    },
                    values,
                ))
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        entries.sort_by(|a, b| b.0.accuracy.mean.total_cmp(&a.0.accuracy.mean));
        let best = entries[0].1.clone();
        let raw: Vec<f64> = entries[1..]
            .iter()
            .map(|(_, v)| welch(&best, v).map_or(1.0, |(_, _, p)| p))
            .collect();
        for ((e, _), p) in entries[1..].iter_mut().zip(holm(&raw)) {
            e.p_holm = Some(p);
        }
        levels.push(Level {
            target,
            entries: entries.into_iter().map(|(e, _)| e).collect(),
        });
    }
    let (model, data, epochs) = key;
    let name = model_name(model);
    Some(Board {
        title: format!("{name} on {data}, {epochs} epochs"),
        file: format!("pareto_{}_{data}_{epochs}ep", slug(&name)),
        levels,
        results,
    })
}

/// The leaderboards' section of the report.
pub fn markdown(boards: &[Board]) -> String {
    let mut out = String::from(
        "Every method trained on the same model, data and number of epochs, at each sparsity it \
         reaches within half a point (0: dense), ranked by mean test accuracy over seeds; the \
         Holm p is Welch's test against the best of the level, corrected within the level. \
         **Bold**: not significantly below the best (Holm p > 0.05). The figure shows every \
         method's accuracy against its compression.\n",
    );
    for b in boards {
        let _ = writeln!(
            out,
            "\n### {}\n\n![accuracy vs compression]({}/{}.png)\n",
            b.title,
            super::FIGURES,
            b.file
        );
        if b.levels.is_empty() {
            out.push_str("No method lands within half a point of a standard sparsity.\n");
            continue;
        }
        out.push_str(
            "| sparsity | rank | method | ablation | n | test accuracy (%) | achieved sparsity (%) | Holm p vs best | theoretical speedup (×) | measured speedup (×, batch 1 / 128, the runs' CPU) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for level in &b.levels {
            for (rank, e) in level.entries.iter().enumerate() {
                let tied = e.p_holm.is_none_or(|p| p > ALPHA);
                let method = if tied {
                    format!("**{}**", e.method)
                } else {
                    e.method.clone()
                };
                let times = |s: &Option<Summary>| {
                    s.as_ref().map_or("–".into(), |s| format!("{:.2}", s.mean))
                };
                let measured = match &e.measured {
                    [None, None] => "–".to_string(),
                    [b1, b128] => format!("{} / {}", times(b1), times(b128)),
                };
                let _ = writeln!(
                    out,
                    "| {:.0} % | {} | {method} | {} | {} | {:.2} ± {:.2} | {:.2} | {} | {} | {measured} |",
                    level.target * 100.0,
                    rank + 1,
                    e.ablation,
                    e.accuracy.n,
                    e.accuracy.mean * 100.0,
                    e.accuracy.std * 100.0,
                    e.sparsity.mean * 100.0,
                    e.p_holm.map_or("best".into(), |p| p_text(Some(p))),
                    times(&e.theoretical),
                );
            }
        }
    }
    out
}
