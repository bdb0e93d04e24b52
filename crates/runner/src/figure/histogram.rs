//! The `histogram` kind: the distribution of non-zero weight magnitudes at the end of training
//! (the form of CKA-SR's Figs. 1-3, SPEC §1.3), one line per arm and sweep point: the share of
//! non-zero weights in each log-spaced bin of |w|, mean over seeds with a ±1 std band. `at`
//! keeps only the sweep points whose listed keys take one of the listed values.

use super::chart::{Point, Prepared, Series, arms_in_order, group_color, selected};
use crate::aggregate::{Group, RunResult, groups};
use crate::record::Status;
use serde_json::Value;
use sparselab_metrics::stats::summarize;
use std::collections::BTreeMap;

/// Equal as numbers (to relative 1e-12) or as values.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

/// Whether group `g` passes the `at` filter (a group that does not sweep a key passes it).
fn kept(g: &Group<'_>, at: &BTreeMap<String, Vec<Value>>) -> bool {
    at.iter().all(|(key, values)| {
        g.sweep
            .get(key)
            .is_none_or(|v| values.iter().any(|w| same(v, w)))
    })
}

/// Prepares the chart.
pub(super) fn histogram_chart(
    title: &Option<String>,
    arms: &[String],
    at: &BTreeMap<String, Vec<Value>>,
    results: &[RunResult],
) -> Prepared {
    let groups: Vec<Group<'_>> = selected(groups(results), arms)
        .into_iter()
        .filter(|g| kept(g, at))
        .collect();
    let arm_names = arms_in_order(&groups);
    let mut series = Vec::new();
    for g in &groups {
        let hists: Vec<Vec<(f64, f64)>> = g
            .runs
            .iter()
            .filter(|r| r.outcome.status == Status::Finished)
            .filter_map(|r| r.outcome.weight_histogram.as_ref().map(|h| h.fractions()))
            .collect();
        let Some(first) = hists.first() else {
            continue;
        };
        let points: Vec<Point> = (0..first.len())
            .filter_map(|i| {
                let ys: Vec<f64> = hists
                    .iter()
                    .filter_map(|h| h.get(i).map(|p| 100.0 * p.1))
                    .collect();
                let s = summarize(&ys)?;
                Some(Point {
                    x: first[i].0,
                    y: s.mean,
                    x_err: 0.0,
                    y_err: s.std,
                })
            })
            .collect();
        series.push(Series::Band {
            label: g.display(),
            color: group_color(&groups, &arm_names, g),
            points,
        });
    }
    trim_empty_bins(&mut series);
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| "magnitudes of non-zero weights".into()),
        x_label: "|w| (log scale)".into(),
        y_label: "share of non-zero weights (%)".into(),
        log_x: true,
        log_y: false,
        integer_x: false,
        series,
    }
}

/// Drops the bins at either end that are empty in every series, so the x axis spans the data.
fn trim_empty_bins(series: &mut [Series]) {
    let occupied = |i: usize| {
        series.iter().any(|s| match s {
            Series::Band { points, .. } => points.get(i).is_some_and(|p| p.y > 0.0),
            _ => false,
        })
    };
    let n = series
        .iter()
        .map(|s| match s {
            Series::Band { points, .. } => points.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let Some(lo) = (0..n).find(|&i| occupied(i)) else {
        return;
    };
    let hi = (0..n).rev().find(|&i| occupied(i)).unwrap_or(lo);
    for s in series.iter_mut() {
        if let Series::Band { points, .. } = s {
            let end = (hi + 1).min(points.len());
            *points = points[lo.min(end)..end].to_vec();
        }
    }
}
