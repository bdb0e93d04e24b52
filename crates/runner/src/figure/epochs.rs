//! The `epochs` kind: a per-epoch metric `y` against the epoch, one line per arm and sweep
//! point, mean over seeds with a ±1 std band.

use super::chart::{
    Point, Prepared, Series, arms_in_order, axis, group_color, selected, strip_unit,
};
use crate::aggregate::{RunResult, groups};

/// Prepares the chart.
pub(super) fn chart(
    title: &Option<String>,
    y: &str,
    log_y: bool,
    arms: &[String],
    results: &[RunResult],
) -> Prepared {
    let (y_label, sy) = axis(y);
    let groups = selected(groups(results), arms);
    let arm_names = arms_in_order(&groups);
    let series = groups
        .iter()
        .filter_map(|g| {
            let color = group_color(&groups, &arm_names, g);
            let points: Vec<Point> = g
                .epoch_summaries(y)
                .into_iter()
                .map(|(e, s)| Point {
                    x: e as f64,
                    y: s.mean * sy,
                    x_err: 0.0,
                    y_err: s.std * sy,
                })
                .collect();
            (!points.is_empty()).then(|| Series::Band {
                label: g.display(),
                color,
                points,
            })
        })
        .collect();
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| format!("{} over training", strip_unit(&y_label))),
        x_label: "epoch".into(),
        y_label,
        log_x: false,
        log_y,
        integer_x: true,
        series,
    }
}
