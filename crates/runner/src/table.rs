//! The Markdown table (mean ± std over seeds) and the tidy CSV files of an ablation.

use crate::aggregate::{Group, RunResult, groups};
use crate::claims::{DEFAULT_TOLERANCE, p_text};
use crate::experiment::Ablation;
use crate::record::{METRICS, Status, metric_info};
use sparselab_metrics::stats::{holm, summarize, welch, welch_interval};
use std::collections::BTreeSet;
use std::fmt::Write;

/// `mean ± std` with a precision suited to the value.
fn cell(mean: f64, std: f64, n: usize) -> String {
    if mean == 0.0 && std == 0.0 {
        return "0".into();
    }
    let digits = if mean.abs() >= 1000.0 {
        0
    } else if mean.abs() >= 100.0 {
        1
    } else if mean.abs() >= 1.0 {
        2
    } else {
        4
    };
    if n > 1 {
        format!("{mean:.digits$} ± {std:.digits$}")
    } else {
        format!("{mean:.digits$}")
    }
}

/// The Markdown table: one row per arm and sweep point.
pub fn markdown(ablation: &Ablation, results: &[RunResult], provenance: &str) -> String {
    let mut out = String::new();
    let mode = if ablation.quick { "quick" } else { "full" };
    let _ = writeln!(
        out,
        "# {} ({mode} mode)\n\n{}\n",
        ablation.name, ablation.description
    );
    let _ = writeln!(out, "{provenance}\n");
    let _ = writeln!(
        out,
        "Values are mean ± sample standard deviation over seeds (n = finished runs); accuracy and \
         sparsity in %, measured at the end of training. \"Test accuracy at best validation \
         epoch\" selects, among the epochs within half a point of the run's final sparsity, the \
         epoch of best accuracy on the validation split carved from the training set; model \
         selection never looks at the test set.{}\n",
        if ablation.arms.iter().any(|a| !a.compare.is_empty()) {
            " A comparison (Δ columns) is the difference of means against the named arm at the \
             same sweep point with its 95% Welch interval, Welch's p, and the p adjusted by \
             Holm's method over every comparison of this table; it is marked unmatched where the \
             two sides' sparsity differs by more than half a point, and where the arms' tuning \
             budgets differ."
        } else {
            ""
        }
    );
    let headers: Vec<String> = ablation
        .columns
        .iter()
        .map(|c| metric_info(c).map_or_else(|| c.clone(), |m| m.label.to_string()))
        .collect();
    let compared = ablation.arms.iter().any(|a| !a.compare.is_empty());
    let mut headers = headers;
    if compared {
        for key in &ablation.compare_on {
            let metric = metric_info(key).map_or(key.as_str(), |m| m.label);
            headers.push(format!(
                "Δ {metric} ± 95% CI vs compared arms (Welch p, Holm p)"
            ));
        }
    }
    let _ = writeln!(out, "| method | n | {} |", headers.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(headers.len()));
    let all = groups(results);
    // Every comparison of the table, one family for Holm's correction.
    let compared_cells: Vec<Vec<Vec<Cell>>> = all
        .iter()
        .map(|g| {
            (ablation.compare_on.iter())
                .map(|key| {
                    if compared {
                        cells(ablation, g, &all, key)
                    } else {
                        Vec::new()
                    }
                })
                .collect()
        })
        .collect();
    let raw: Vec<f64> = compared_cells
        .iter()
        .flatten()
        .flatten()
        .filter_map(|c| c.p)
        .collect();
    let mut adjusted = holm(&raw).into_iter();
    let holm_of: Vec<Vec<Vec<Option<f64>>>> = compared_cells
        .iter()
        .map(|per_key| {
            per_key
                .iter()
                .map(|cs| {
                    cs.iter()
                        .map(|c| c.p.and_then(|_| adjusted.next()))
                        .collect()
                })
                .collect()
        })
        .collect();
    for (gi, g) in all.iter().enumerate() {
        let finished = g
            .runs
            .iter()
            .filter(|r| r.outcome.status == Status::Finished)
            .count();
        let n = match g.diverged() {
            0 => finished.to_string(),
            d => format!("{finished} ({d} diverged)"),
        };
        let cells: Vec<String> = ablation
            .columns
            .iter()
            .map(|c| {
                let scale = metric_info(c).map_or(1.0, |m| m.scale);
                g.summary(c).map_or_else(
                    || "–".to_string(),
                    |s| cell(s.mean * scale, s.std * scale, s.n),
                )
            })
            .collect();
        let mut cells = cells;
        if compared {
            for (k, per_key) in compared_cells[gi].iter().enumerate() {
                let texts: Vec<String> = (per_key.iter().zip(&holm_of[gi][k]))
                    .map(|(c, h)| cell_text(c, *h))
                    .collect();
                cells.push(if texts.is_empty() {
                    "–".into()
                } else {
                    texts.join("; ")
                });
            }
        }
        let _ = writeln!(out, "| {} | {n} | {} |", g.display(), cells.join(" | "));
    }
    out
}

/// The metric arms are compared on unless the file's `[table] compare_on` lists others.
pub const COMPARED: &str = "test_accuracy";

/// One comparison of a table: group `g` against a `compare` arm's group at the same sweep point,
/// on one metric.
struct Cell {
    /// `Δ ± CI` in table units.
    delta: String,
    /// Welch's p (`None`: too few seeds or no variance).
    p: Option<f64>,
    /// The compared arm's label.
    label: String,
    /// What makes the pair unequal: sparsity not matched, different tuning budgets.
    notes: Vec<String>,
}

/// Every comparison of metric `key` of `g` against each of its arm's `compare` arms at the same
/// sweep point ("the same point": the compared arm's swept keys all take the values `g` has, so
/// an arm that also sweeps a paired key, such as LpSGD's p next to the target sparsity, is
/// compared at its target sparsity).
fn cells(ablation: &Ablation, g: &Group<'_>, all: &[Group<'_>], key: &str) -> Vec<Cell> {
    let Some(arm) = ablation.arms.iter().find(|a| a.name == g.arm) else {
        return Vec::new();
    };
    let scale = metric_info(key).map_or(1.0, |m| m.scale);
    let a = g.values(key);
    arm.compare
        .iter()
        .filter_map(|c| all.iter().find(|h| h.arm == *c && h.at_point_of(g)))
        .filter_map(|h| {
            let b = h.values(key);
            let delta = (summarize(&a)?.mean - summarize(&b)?.mean) * scale;
            let delta = match welch_interval(&a, &b) {
                Some((_, half)) => format!(
                    "{} ± {}",
                    signed(delta, scale),
                    unsigned(half * scale, scale)
                ),
                None => signed(delta, scale),
            };
            let mut notes = Vec::new();
            if let (Some(sa), Some(sb)) =
                (g.summary("weight_sparsity"), h.summary("weight_sparsity"))
                && (sa.mean - sb.mean).abs() > DEFAULT_TOLERANCE
            {
                notes.push(format!(
                    "unmatched: sparsity {:.1} vs {:.1} %",
                    sa.mean * 100.0,
                    sb.mean * 100.0
                ));
            }
            let budget = |name: &str| {
                ablation
                    .arms
                    .iter()
                    .find(|x| x.name == name)
                    .map_or(1, |x| x.tuning_budget)
            };
            let (ta, tb) = (budget(g.arm), budget(h.arm));
            if ta != tb {
                notes.push(format!("tuning budgets differ: {ta} vs {tb}"));
            }
            Some(Cell {
                delta,
                p: welch(&a, &b).map(|(_, _, p)| p),
                label: h.label.to_string(),
                notes,
            })
        })
        .collect()
}

/// A cell's text, with its Holm-adjusted p.
fn cell_text(c: &Cell, p_holm: Option<f64>) -> String {
    let p = match (c.p, p_holm) {
        (Some(p), Some(h)) => format!(" (p = {}, Holm {})", p_text(Some(p)), p_text(Some(h))),
        _ => String::new(),
    };
    let notes = if c.notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", c.notes.join("; "))
    };
    format!("{}{p} vs {}{notes}", c.delta, c.label)
}

/// A half-width, with [`signed`]'s precision and no sign.
fn unsigned(v: f64, scale: f64) -> String {
    signed(v, scale).trim_start_matches('+').to_string()
}

/// A signed difference: two decimals for scaled metrics (percentages) and values ≥ 1; four for
/// unscaled values below 1 (CKA, Hoyer), or one significant digit where four would show 0.
fn signed(delta: f64, scale: f64) -> String {
    if scale != 1.0 || delta.abs() >= 1.0 {
        format!("{delta:+.2}")
    } else if delta == 0.0 || delta.abs() >= 5e-5 {
        format!("{delta:+.4}")
    } else {
        format!("{delta:+.0e}")
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn sweep_keys(results: &[RunResult]) -> Vec<String> {
    results
        .iter()
        .flat_map(|r| r.run.sweep.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn identity_columns(r: &RunResult, keys: &[String]) -> Vec<String> {
    let mut row = vec![
        csv_field(&r.run.id),
        csv_field(&r.run.arm),
        csv_field(&r.run.label),
        r.run.config.seed.to_string(),
    ];
    row.extend(keys.iter().map(|k| {
        r.run
            .sweep
            .get(k)
            .map_or_else(String::new, |v| csv_field(&v.to_string()))
    }));
    row
}

/// Tidy CSV with one row per run (final metrics).
pub fn runs_csv(results: &[RunResult]) -> String {
    let keys = sweep_keys(results);
    let mut out = format!(
        "run_id,arm,label,seed{}{},status,epochs,{}\n",
        if keys.is_empty() { "" } else { "," },
        keys.join(","),
        METRICS
            .iter()
            .filter(|m| m.key != "epoch")
            .map(|m| m.key)
            .collect::<Vec<_>>()
            .join(",")
    );
    for r in results {
        let mut row = identity_columns(r, &keys);
        row.push(format!("{:?}", r.outcome.status).to_lowercase());
        row.push(r.outcome.epochs.to_string());
        row.extend(
            METRICS
                .iter()
                .filter(|m| m.key != "epoch")
                .map(|m| num(r.value(m.key))),
        );
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Tidy CSV with one row per run and epoch.
pub fn epochs_csv(results: &[RunResult]) -> String {
    let keys = sweep_keys(results);
    let fields = serde_json::to_value(crate::record::EpochRecord::default()).expect("serialisable");
    let epoch_metrics: Vec<&str> = METRICS
        .iter()
        .map(|m| m.key)
        .filter(|k| fields.get(k).is_some())
        .collect();
    let mut out = format!(
        "run_id,arm,label,seed{}{},{}\n",
        if keys.is_empty() { "" } else { "," },
        keys.join(","),
        epoch_metrics.join(",")
    );
    for r in results {
        for e in &r.epochs {
            let mut row = identity_columns(r, &keys);
            row.extend(epoch_metrics.iter().map(|k| num(e.metric(k))));
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_keep_two_significant_digits() {
        assert_eq!(p_text(Some(0.3412)), "0.34");
        assert_eq!(p_text(Some(0.00456)), "0.0046");
        assert_eq!(p_text(Some(0.00003)), "3e-5");
        assert_eq!(p_text(None), "–");
        assert_eq!(signed(-1.234, 100.0), "-1.23");
        assert_eq!(signed(-0.2929, 1.0), "-0.2929");
        assert_eq!(signed(-0.00001, 1.0), "-1e-5");
        assert_eq!(signed(0.0, 1.0), "+0.0000");
    }

    #[test]
    fn cells_and_csv_quoting() {
        assert_eq!(cell(88.123, 0.456, 3), "88.12 ± 0.46");
        assert_eq!(cell(0.01234, 0.0, 1), "0.0123");
        assert_eq!(cell(123.45, 1.0, 2), "123.5 ± 1.0");
        assert_eq!(cell(21345.6, 120.2, 3), "21346 ± 120");
        assert_eq!(cell(0.0, 0.0, 3), "0");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
