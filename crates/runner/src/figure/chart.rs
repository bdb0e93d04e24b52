//! What every figure kind prepares for drawing: series of points with error bars or bands,
//! reference lines, bars; colours; axis labels and scales from the metric table.

use crate::aggregate::Group;
use crate::record::metric_info;
use plotters::prelude::*;

/// Okabe–Ito colour-blind-safe palette.
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// Axis label of a metric or sweep key, and the factor values are displayed with.
pub(super) fn axis(key: &str) -> (String, f64) {
    match metric_info(key) {
        Some(m) => (m.label.to_string(), m.scale),
        // A hyperparameter path such as `optimizer.mu`: "mu (optimizer)".
        None => match key.rsplit_once('.') {
            Some((section, leaf)) => (format!("{leaf} ({section})"), 1.0),
            None => (key.to_string(), 1.0),
        },
    }
}

pub(super) fn strip_unit(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

/// A point with ±1 std error bars.
#[derive(Clone, Copy, Debug)]
pub(super) struct Point {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) x_err: f64,
    pub(super) y_err: f64,
}

/// One legend entry.
#[derive(Clone, Debug)]
pub(super) enum Series {
    /// Points joined by a line, with error bars.
    Line {
        label: String,
        color: RGBColor,
        points: Vec<Point>,
    },
    /// Mean line with a ±std band (per x).
    Band {
        label: String,
        color: RGBColor,
        points: Vec<Point>,
    },
    /// A prediction: a dashed line without markers (`dash`: dash and gap lengths in pixels).
    Predicted {
        label: String,
        color: RGBColor,
        points: Vec<Point>,
        dash: (u32, u32),
    },
    /// A horizontal reference: mean ± std over the whole x range.
    Reference {
        label: String,
        color: RGBColor,
        mean: f64,
        std: f64,
    },
}

/// The colour of the `k`-th of `n` sweep points of the arm with colour index `arm`: the arm's
/// palette colour, lighter for earlier sweep points (one hue per arm, shades along the sweep).
pub(super) fn shade(arm: usize, k: usize, n: usize) -> RGBColor {
    let RGBColor(r, g, b) = PALETTE[arm % PALETTE.len()];
    let strength = if n <= 1 {
        1.0
    } else {
        0.4 + 0.6 * k as f64 / (n - 1) as f64
    };
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * strength).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// The colour of group `g` among `groups`: its arm's hue (by position in `arm_names`), shaded
/// by its sweep point's position within the arm.
pub(super) fn group_color(
    groups: &[Group<'_>],
    arm_names: &[(&str, &str)],
    g: &Group<'_>,
) -> RGBColor {
    let arm = arm_names.iter().position(|(a, _)| *a == g.arm).unwrap_or(0);
    let of_arm: Vec<&Group<'_>> = groups.iter().filter(|o| o.arm == g.arm).collect();
    let k = of_arm.iter().position(|o| o.sweep == g.sweep).unwrap_or(0);
    shade(arm, k, of_arm.len())
}

/// Grouped bars: one group per category (layer), one bar per series (arm).
#[derive(Clone, Debug)]
pub(super) struct Bars {
    pub(super) title: String,
    pub(super) y_label: String,
    pub(super) categories: Vec<String>,
    /// `(label, (mean, std) per category)`.
    pub(super) series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Everything needed to draw, independent of the backend.
#[derive(Clone, Debug)]
pub(super) enum Chart {
    /// Lines, bands and references on x/y axes.
    Xy(Prepared),
    /// Grouped bars over categories.
    Bars(Bars),
}

/// An x/y chart.
#[derive(Clone, Debug)]
pub(super) struct Prepared {
    pub(super) title: String,
    pub(super) x_label: String,
    pub(super) y_label: String,
    pub(super) log_x: bool,
    pub(super) log_y: bool,
    /// Only integer ticks on x (epochs).
    pub(super) integer_x: bool,
    pub(super) series: Vec<Series>,
}

pub(super) fn selected<'a>(all: Vec<Group<'a>>, arms: &[String]) -> Vec<Group<'a>> {
    all.into_iter()
        .filter(|g| arms.is_empty() || arms.iter().any(|a| a == g.arm))
        .collect()
}

/// The arms of `groups` with their labels, in order of first appearance (the experiment file's
/// order); an arm's index is its colour.
pub(super) fn arms_in_order<'a>(groups: &[Group<'a>]) -> Vec<(&'a str, &'a str)> {
    let mut arms: Vec<(&str, &str)> = Vec::new();
    for g in groups {
        if !arms.iter().any(|(a, _)| *a == g.arm) {
            arms.push((g.arm, g.label));
        }
    }
    arms
}

/// Mean ± std over seeds of per-run `(x, y)` values that share x (to 1e-9).
pub(super) fn mean_by_x(values: &[(f64, f64)]) -> Vec<Point> {
    let mut xs: Vec<f64> = values.iter().map(|(x, _)| *x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    xs.into_iter()
        .filter_map(|x| {
            let ys: Vec<f64> = values
                .iter()
                .filter(|(vx, _)| (vx - x).abs() < 1e-9)
                .map(|(_, y)| *y)
                .collect();
            let s = sparselab_metrics::stats::summarize(&ys)?;
            Some(Point {
                x,
                y: s.mean,
                x_err: 0.0,
                y_err: s.std,
            })
        })
        .collect()
}
