//! The `final` kind: a final metric `y` against a final metric or swept hyperparameter `x`, one
//! line per arm through its sweep points; each point is the mean over seeds with ±1 std error bars
//! (in y, and in x when x is measured). Arms listed in `reference` (typically dense training) are
//! drawn as a horizontal mean line with a ±1 std band.

use super::chart::{PALETTE, Point, Prepared, Series, arms_in_order, axis, selected, strip_unit};
use crate::aggregate::{Group, RunResult, groups};

/// Prepares the chart.
#[allow(clippy::too_many_arguments)]
pub(super) fn chart(
    title: &Option<String>,
    x: &str,
    y: &str,
    log_x: bool,
    log_y: bool,
    reference: &[String],
    arms: &[String],
    results: &[RunResult],
) -> Prepared {
    let (x_label, sx) = axis(x);
    let (y_label, sy) = axis(y);
    let groups = selected(groups(results), arms);
    let mut series = Vec::new();
    for (index, (arm, label)) in arms_in_order(&groups).into_iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let of_arm: Vec<&Group<'_>> = groups.iter().filter(|g| g.arm == arm).collect();
        if reference.iter().any(|r| r == arm) {
            let ys: Vec<f64> = of_arm.iter().flat_map(|g| g.values(y)).collect();
            if let Some(s) = sparselab_metrics::stats::summarize(&ys) {
                series.push(Series::Reference {
                    label: label.to_string(),
                    color,
                    mean: s.mean * sy,
                    std: s.std * sy,
                });
            }
            continue;
        }
        let mut points: Vec<Point> = of_arm
            .iter()
            .filter_map(|g| {
                let (xs, ys) = (g.summary(x)?, g.summary(y)?);
                Some(Point {
                    x: xs.mean * sx,
                    y: ys.mean * sy,
                    x_err: xs.std * sx,
                    y_err: ys.std * sy,
                })
            })
            .collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        if !points.is_empty() {
            series.push(Series::Line {
                label: label.to_string(),
                color,
                points,
            });
        }
    }
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| format!("{} vs {}", strip_unit(&y_label), strip_unit(&x_label))),
        x_label,
        y_label,
        log_x,
        log_y,
        integer_x: false,
        series,
    }
}
