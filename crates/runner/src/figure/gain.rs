//! The `gain` kind: what adding a method to a host buys. For each `[with, without]` pair of
//! arms, `mean(with) − mean(without)` of a final metric at every sweep point of `with` (matched
//! as the table's comparisons are: [`Group::at_point_of`]), with its 95% Welch interval, against a
//! swept hyperparameter or final metric. A dashed line marks zero gain.

use super::chart::{PALETTE, Point, Prepared, Series, axis, strip_unit};
use crate::aggregate::{Group, RunResult, groups};
use sparselab_metrics::stats::welch_interval;

/// Prepares the chart; `pairs` are `[with, without]` arm names.
pub(super) fn gain_chart(
    title: &Option<String>,
    x: &str,
    y: &str,
    log_x: bool,
    pairs: &[[String; 2]],
    results: &[RunResult],
) -> Prepared {
    let (x_label, sx) = axis(x);
    let (y_label, sy) = axis(y);
    let all = groups(results);
    let mut series = Vec::new();
    for (index, [with, without]) in pairs.iter().enumerate() {
        let mut points: Vec<Point> = all
            .iter()
            .filter(|g| g.arm == with)
            .filter_map(|g| {
                let base: &Group<'_> = all.iter().find(|h| h.arm == without && h.at_point_of(g))?;
                let (delta, half) = welch_interval(&g.values(y), &base.values(y))?;
                Some(Point {
                    x: g.summary(x)?.mean * sx,
                    y: delta * sy,
                    x_err: 0.0,
                    y_err: half * sy,
                })
            })
            .collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        let label = all
            .iter()
            .find(|g| g.arm == with)
            .map_or(with.as_str(), |g| g.label);
        if !points.is_empty() {
            series.push(Series::Line {
                label: label.to_string(),
                color: PALETTE[index % PALETTE.len()],
                points,
            });
        }
    }
    series.push(Series::Reference {
        label: "no gain".into(),
        color: plotters::style::RGBColor(120, 120, 120),
        mean: 0.0,
        std: 0.0,
    });
    let what = strip_unit(&y_label);
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| format!("gain in {what} vs {}", strip_unit(&x_label))),
        x_label,
        y_label: format!("Δ {y_label}, with − without (mean, 95% CI)"),
        log_x,
        log_y: false,
        integer_x: false,
        series,
    }
}
