//! The `steps` kind: the sparsity of the masked tensors after each topology update, against the
//! training step, with the targets as lines.

use super::chart::*;
use crate::aggregate::{RunResult, groups};

/// The `steps` kind: sparsity traces and target lines.
pub(super) fn steps_chart(
    title: &Option<String>,
    arms: &[String],
    results: &[RunResult],
) -> Prepared {
    let groups = selected(groups(results), arms);
    let arm_names = arms_in_order(&groups);
    let mut series = Vec::new();
    for g in &groups {
        let color = group_color(&groups, &arm_names, g);
        let trace: Vec<(f64, f64)> = g
            .runs
            .iter()
            .flat_map(|r| r.epochs.iter().flat_map(|e| e.sparsity_trace.iter()))
            .map(|(step, s)| (*step as f64, 100.0 * s))
            .collect();
        let points = mean_by_x(&trace);
        if points.is_empty() {
            continue;
        }
        let target = g.runs[0]
            .run
            .config
            .method
            .topology
            .as_ref()
            .and_then(|t| t.params.get("sparsity")?.as_f64());
        if let Some(target) = target {
            series.push(Series::Reference {
                label: format!("target S* = {target}"),
                color,
                mean: 100.0 * target,
                std: 0.0,
            });
        }
        series.push(Series::Band {
            label: g.display(),
            color,
            points,
        });
    }
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| "sparsity over training steps".into()),
        x_label: "step".into(),
        y_label: "sparsity of masked weights (%)".into(),
        log_x: false,
        log_y: false,
        integer_x: true,
        series,
    }
}
