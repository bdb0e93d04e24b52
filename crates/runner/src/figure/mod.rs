//! Paper-style figures with plotters, written as SVG and PNG.
//!
//! Kinds, chosen per experiment file (`[[figures]]`):
//!
//! - `final`: a final metric `y` against a final metric or swept hyperparameter `x`, one line per
//!   arm through its sweep points; each point is the mean over seeds with ±1 std error bars (in y,
//!   and in x when x is measured). Arms listed in `reference` (typically dense training) are drawn
//!   as a horizontal mean line with a ±1 std band.
//! - `epochs`: a per-epoch metric `y` against the epoch, one line per arm and sweep point, mean
//!   over seeds with a ±1 std band.
//! - `layers`, `steps`, `hoyer`: per-layer sparsity bars, sparsity after each topology update,
//!   measured vs predicted Hoyer sparsity (see [`FigureSpec`]).
//! - `gain` ([`gain`]): with − without a method, per pair of arms, with 95% Welch intervals.
//! - `histogram` ([`histogram`]): the distribution of non-zero weight magnitudes.
//!
//! PNG text is rendered with the DejaVu Sans font embedded in the binary (no system fonts
//! needed); SVG text names the same family.

use crate::aggregate::RunResult;
use chart::{Chart, Point, Prepared, Series};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

mod chart;
mod draw;
mod epochs;
mod final_metric;
mod gain;
mod histogram;
mod hoyer;
mod layers;
pub mod schema;
mod steps;

pub use schema::FigureSpec;

fn prepare(spec: &FigureSpec, results: &[RunResult]) -> Chart {
    if let FigureSpec::Layers {
        title,
        target,
        arms,
        ..
    } = spec
    {
        return Chart::Bars(layers::layer_bars(title, *target, arms, results));
    }
    let mut p = prepare_xy(spec, results);
    if p.log_y && floor_non_positive(&mut p.series) {
        p.title.push_str(" (0 drawn at the axis floor)");
    }
    Chart::Xy(p)
}

/// On a log axis, values ≤ 0 cannot be drawn: they are moved to a floor below the smallest
/// positive value (½ of it, or ½ for counts ≥ 1). Returns whether any value was moved.
fn floor_non_positive(series: &mut [Series]) -> bool {
    let points = |s: &Series| match s {
        Series::Line { points, .. }
        | Series::Band { points, .. }
        | Series::Predicted { points, .. } => points.clone(),
        Series::Reference { mean, std, .. } => vec![Point {
            x: 0.0,
            y: *mean,
            x_err: 0.0,
            y_err: *std,
        }],
    };
    let min_positive = series
        .iter()
        .flat_map(points)
        .map(|p| p.y)
        .filter(|y| *y > 0.0)
        .fold(f64::INFINITY, f64::min);
    let floor = if min_positive.is_finite() {
        (min_positive / 2.0).min(0.5)
    } else {
        0.5
    };
    let mut moved = false;
    for s in series.iter_mut() {
        if let Series::Line { points, .. }
        | Series::Band { points, .. }
        | Series::Predicted { points, .. } = s
        {
            for p in points.iter_mut() {
                if p.y <= 0.0 {
                    p.y = floor;
                    p.y_err = 0.0;
                    moved = true;
                } else if p.y - p.y_err <= 0.0 {
                    p.y_err = p.y - floor;
                }
            }
        }
    }
    moved
}

fn prepare_xy(spec: &FigureSpec, results: &[RunResult]) -> Prepared {
    match spec {
        FigureSpec::Final {
            title,
            x,
            y,
            log_x,
            log_y,
            reference,
            arms,
            ..
        } => final_metric::chart(title, x, y, *log_x, *log_y, reference, arms, results),
        FigureSpec::Epochs {
            title,
            y,
            log_y,
            arms,
            ..
        } => epochs::chart(title, y, *log_y, arms, results),
        FigureSpec::Steps { title, arms, .. } => steps::steps_chart(title, arms, results),
        FigureSpec::Hoyer { title, arms, .. } => hoyer::hoyer_chart(title, arms, results),
        FigureSpec::Gain {
            title,
            x,
            y,
            log_x,
            pairs,
            ..
        } => gain::gain_chart(title, x, y, *log_x, pairs, results),
        FigureSpec::Histogram {
            title, arms, at, ..
        } => histogram::histogram_chart(title, arms, at, results),
        FigureSpec::Layers { .. } => unreachable!("bars are prepared by layer_bars"),
    }
}

/// Renders `spec` from `results` into `dir` as `<file>.svg` and `<file>.png`; returns the paths.
pub fn render(
    spec: &FigureSpec,
    results: &[RunResult],
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    draw::register_font();
    let prepared = prepare(spec, results);
    let svg = dir.join(format!("{}.svg", spec.file()));
    let png = dir.join(format!("{}.png", spec.file()));
    let svg_tmp = svg.with_extension("svg.tmp");
    let png_tmp = png.with_extension("tmp.png");
    draw::draw(
        SVGBackend::new(&svg_tmp, draw::SIZE).into_drawing_area(),
        &prepared,
    )
    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
    draw::draw(
        BitMapBackend::new(&png_tmp, draw::SIZE).into_drawing_area(),
        &prepared,
    )
    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
    std::fs::rename(&svg_tmp, &svg)?;
    std::fs::rename(&png_tmp, &png)?;
    Ok(vec![svg, png])
}
