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

use crate::aggregate::{Group, RunResult, groups};
use crate::record::metric_info;
use crate::spec::Arm;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use sparselab_core::ConfigError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

mod gain;
mod histogram;

/// Font for PNG output (DejaVu Sans, see `assets/LICENSE-DejaVu`).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "DejaVu Sans";

/// Okabe–Ito colour-blind-safe palette.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// A figure as the experiment file describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FigureSpec {
    /// Final `y` against final `x` (or a swept hyperparameter).
    Final {
        /// Output file stem.
        file: String,
        /// Title (default: "y vs x").
        title: Option<String>,
        /// X metric or sweep key.
        x: String,
        /// Y metric.
        y: String,
        /// Logarithmic x axis (compression ratios span decades).
        #[serde(default)]
        log_x: bool,
        /// Logarithmic y axis.
        #[serde(default)]
        log_y: bool,
        /// Arms drawn as horizontal reference bands.
        #[serde(default)]
        reference: Vec<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Per-layer weight sparsity of each arm at its sweep point whose overall weight sparsity
    /// is closest to `target` (grouped bars, mean ± std over seeds).
    Layers {
        /// Output file stem.
        file: String,
        /// Title (default: "per-layer sparsity at ≈ target").
        title: Option<String>,
        /// Overall weight sparsity to match (0–1).
        target: f64,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Sparsity of the masked tensors after every topology update against the step, one line
    /// per arm and sweep point (mean over seeds with a ±1 std band), each run's target sparsity
    /// (its topology's `sparsity`) as a dashed line.
    Steps {
        /// Output file stem.
        file: String,
        /// Title (default: "sparsity over training steps").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// Measured Hoyer sparsity of every sphere-constrained layer against its p (mean ± std over
    /// seeds), with the gamma hypothesis' predictions (closed form, Monte Carlo, fitted k;
    /// SPEC §1.2) as dashed lines in the layer's colour.
    Hoyer {
        /// Output file stem.
        file: String,
        /// Title (default: "Hoyer sparsity vs p").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
    /// `mean(with) − mean(without)` of final `y` for each `[with, without]` pair of arms, at
    /// every sweep point of `with`, with 95% Welch intervals, against `x`.
    Gain {
        /// Output file stem.
        file: String,
        /// Title (default: "gain in y vs x").
        title: Option<String>,
        /// X metric or sweep key.
        x: String,
        /// Y metric (default: test accuracy).
        #[serde(default = "test_accuracy")]
        y: String,
        /// Logarithmic x axis.
        #[serde(default)]
        log_x: bool,
        /// `[with, without]` arm pairs, one line each.
        pairs: Vec<[String; 2]>,
    },
    /// Distribution of non-zero weight magnitudes at the end of training, one line per arm and
    /// sweep point.
    Histogram {
        /// Output file stem.
        file: String,
        /// Title (default: "magnitudes of non-zero weights").
        title: Option<String>,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
        /// Sweep points to keep: key → values (default: all).
        #[serde(default)]
        at: BTreeMap<String, Vec<Value>>,
    },
    /// Per-epoch `y`.
    Epochs {
        /// Output file stem.
        file: String,
        /// Title (default: "y over training").
        title: Option<String>,
        /// Y metric.
        y: String,
        /// Logarithmic y axis.
        #[serde(default)]
        log_y: bool,
        /// Arms to draw (default: all).
        #[serde(default)]
        arms: Vec<String>,
    },
}

impl FigureSpec {
    /// Parses and validates a `[[figures]]` entry against the ablation's arms and sweep keys.
    pub fn parse(value: &Value, arms: &[Arm], sweep_keys: &[String]) -> Result<Self, ConfigError> {
        let spec: FigureSpec = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        let metric = |key: &str, field: &str, sweep_ok: bool| -> Result<(), ConfigError> {
            if metric_info(key).is_some() || (sweep_ok && sweep_keys.iter().any(|k| k == key)) {
                Ok(())
            } else {
                let mut allowed: Vec<&str> = crate::record::METRICS.iter().map(|m| m.key).collect();
                if sweep_ok {
                    allowed.extend(sweep_keys.iter().map(String::as_str));
                }
                allowed.dedup();
                Err(ConfigError::new(
                    field,
                    format!("unknown metric `{key}` (allowed: {})", allowed.join(", ")),
                ))
            }
        };
        let known_arms = |listed: &[String], field: &str| -> Result<(), ConfigError> {
            match listed
                .iter()
                .find(|a| !arms.iter().any(|arm| &arm.name == *a))
            {
                Some(bad) => Err(ConfigError::new(
                    field,
                    format!(
                        "unknown arm `{bad}` (allowed: {})",
                        arms.iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                None => Ok(()),
            }
        };
        match &spec {
            FigureSpec::Final {
                x,
                y,
                reference,
                arms: selected,
                ..
            } => {
                metric(x, "x", true)?;
                metric(y, "y", false)?;
                known_arms(reference, "reference")?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Epochs {
                y, arms: selected, ..
            } => {
                metric(y, "y", false)?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Layers {
                target,
                arms: selected,
                ..
            } => {
                sparselab_core::config::check_closed("target", *target, 0.0, 1.0)?;
                known_arms(selected, "arms")?;
            }
            FigureSpec::Steps { arms: selected, .. } | FigureSpec::Hoyer { arms: selected, .. } => {
                known_arms(selected, "arms")?
            }
            FigureSpec::Gain { x, y, pairs, .. } => {
                metric(x, "x", true)?;
                metric(y, "y", false)?;
                if pairs.is_empty() {
                    return Err(ConfigError::new(
                        "pairs",
                        "at least one [with, without] pair of arms",
                    ));
                }
                known_arms(&pairs.concat(), "pairs")?;
            }
            FigureSpec::Histogram {
                arms: selected, at, ..
            } => {
                known_arms(selected, "arms")?;
                if let Some(bad) = at.keys().find(|k| !sweep_keys.contains(k)) {
                    return Err(ConfigError::new(
                        "at",
                        format!("`{bad}` is not swept (allowed: {})", sweep_keys.join(", ")),
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// Output file stem.
    pub fn file(&self) -> &str {
        match self {
            FigureSpec::Final { file, .. }
            | FigureSpec::Epochs { file, .. }
            | FigureSpec::Layers { file, .. }
            | FigureSpec::Steps { file, .. }
            | FigureSpec::Hoyer { file, .. }
            | FigureSpec::Gain { file, .. }
            | FigureSpec::Histogram { file, .. } => file,
        }
    }
}

fn test_accuracy() -> String {
    "test_accuracy".into()
}

/// Axis label of a metric or sweep key, and the factor values are displayed with.
fn axis(key: &str) -> (String, f64) {
    match metric_info(key) {
        Some(m) => (m.label.to_string(), m.scale),
        // A hyperparameter path such as `optimizer.mu`: "mu (optimizer)".
        None => match key.rsplit_once('.') {
            Some((section, leaf)) => (format!("{leaf} ({section})"), 1.0),
            None => (key.to_string(), 1.0),
        },
    }
}

/// A point with ±1 std error bars.
#[derive(Clone, Copy, Debug)]
struct Point {
    x: f64,
    y: f64,
    x_err: f64,
    y_err: f64,
}

/// One legend entry.
#[derive(Clone, Debug)]
enum Series {
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
fn shade(arm: usize, k: usize, n: usize) -> RGBColor {
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
fn group_color(groups: &[Group<'_>], arm_names: &[(&str, &str)], g: &Group<'_>) -> RGBColor {
    let arm = arm_names.iter().position(|(a, _)| *a == g.arm).unwrap_or(0);
    let of_arm: Vec<&Group<'_>> = groups.iter().filter(|o| o.arm == g.arm).collect();
    let k = of_arm.iter().position(|o| o.sweep == g.sweep).unwrap_or(0);
    shade(arm, k, of_arm.len())
}

/// Grouped bars: one group per category (layer), one bar per series (arm).
#[derive(Clone, Debug)]
struct Bars {
    title: String,
    y_label: String,
    categories: Vec<String>,
    /// `(label, (mean, std) per category)`.
    series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Everything needed to draw, independent of the backend.
#[derive(Clone, Debug)]
enum Chart {
    /// Lines, bands and references on x/y axes.
    Xy(Prepared),
    /// Grouped bars over categories.
    Bars(Bars),
}

/// An x/y chart.
#[derive(Clone, Debug)]
struct Prepared {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    log_y: bool,
    /// Only integer ticks on x (epochs).
    integer_x: bool,
    series: Vec<Series>,
}

fn selected<'a>(all: Vec<Group<'a>>, arms: &[String]) -> Vec<Group<'a>> {
    all.into_iter()
        .filter(|g| arms.is_empty() || arms.iter().any(|a| a == g.arm))
        .collect()
}

/// The arms of `groups` with their labels, in order of first appearance (the experiment file's
/// order); an arm's index is its colour.
fn arms_in_order<'a>(groups: &[Group<'a>]) -> Vec<(&'a str, &'a str)> {
    let mut arms: Vec<(&str, &str)> = Vec::new();
    for g in groups {
        if !arms.iter().any(|(a, _)| *a == g.arm) {
            arms.push((g.arm, g.label));
        }
    }
    arms
}

/// Sort key putting layers in network order: records keep layers in a map sorted by name, so the
/// stem goes first, the classifier (`head`) last, and numbers inside names compare as numbers
/// (`blocks.2` before `blocks.10`).
fn layer_order(path: &str) -> (u8, Vec<(String, u64)>) {
    let rank = if path.starts_with("stem") {
        0
    } else if path.starts_with("head") {
        2
    } else {
        1
    };
    let parts = path
        .split('.')
        .map(|part| {
            let digits: String = part.chars().filter(char::is_ascii_digit).collect();
            let text: String = part.chars().filter(|c| !c.is_ascii_digit()).collect();
            (text, digits.parse().unwrap_or(0))
        })
        .collect();
    (rank, parts)
}

/// Per-layer sparsity bars at the sweep point of each arm closest to `target` overall sparsity.
fn layer_bars(title: &Option<String>, target: f64, arms: &[String], results: &[RunResult]) -> Bars {
    let groups = selected(groups(results), arms);
    let mut categories: Vec<String> = Vec::new();
    let mut chosen: Vec<&Group<'_>> = Vec::new();
    for g in &groups {
        let distance = |g: &Group<'_>| {
            g.summary("weight_sparsity")
                .map_or(f64::INFINITY, |s| (s.mean - target).abs())
        };
        match chosen.iter_mut().find(|c| c.arm == g.arm) {
            Some(c) if distance(g) < distance(c) => *c = g,
            Some(_) => {}
            None => chosen.push(g),
        }
    }
    let layer_values = |g: &Group<'_>, layer: &str| -> Vec<f64> {
        g.runs
            .iter()
            .filter(|r| r.outcome.status == crate::record::Status::Finished)
            .filter_map(|r| r.outcome.last.as_ref()?.layer_sparsity.get(layer).copied())
            .collect()
    };
    for g in &chosen {
        for r in &g.runs {
            if let Some(last) = &r.outcome.last {
                for layer in last.layer_sparsity.keys() {
                    if !categories.contains(layer) {
                        categories.push(layer.clone());
                    }
                }
            }
        }
    }
    categories.sort_by_key(|l| layer_order(l));
    let series = chosen
        .iter()
        .map(|g| {
            let overall = g.summary("weight_sparsity").map_or(f64::NAN, |s| s.mean);
            let values = categories
                .iter()
                .map(|layer| {
                    sparselab_metrics::stats::summarize(&layer_values(g, layer))
                        .map_or((0.0, 0.0), |s| (100.0 * s.mean, 100.0 * s.std))
                })
                .collect();
            (
                format!("{} (overall {:.1}%)", g.display(), 100.0 * overall),
                values,
            )
        })
        .collect();
    Bars {
        title: title
            .clone()
            .unwrap_or_else(|| format!("per-layer sparsity at ≈ {:.0}% overall", 100.0 * target)),
        y_label: "layer weight sparsity (%)".into(),
        categories,
        series,
    }
}

fn prepare(spec: &FigureSpec, results: &[RunResult]) -> Chart {
    if let FigureSpec::Layers {
        title,
        target,
        arms,
        ..
    } = spec
    {
        return Chart::Bars(layer_bars(title, *target, arms, results));
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
        } => {
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
                title: title.clone().unwrap_or_else(|| {
                    format!("{} vs {}", strip_unit(&y_label), strip_unit(&x_label))
                }),
                x_label,
                y_label,
                log_x: *log_x,
                log_y: *log_y,
                integer_x: false,
                series,
            }
        }
        FigureSpec::Epochs {
            title,
            y,
            log_y,
            arms,
            ..
        } => {
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
                log_y: *log_y,
                integer_x: true,
                series,
            }
        }
        FigureSpec::Steps { title, arms, .. } => steps_chart(title, arms, results),
        FigureSpec::Hoyer { title, arms, .. } => hoyer_chart(title, arms, results),
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

/// Mean ± std over seeds of per-run `(x, y)` values that share x (to 1e-9).
fn mean_by_x(values: &[(f64, f64)]) -> Vec<Point> {
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

/// The `steps` kind: sparsity traces and target lines.
fn steps_chart(title: &Option<String>, arms: &[String], results: &[RunResult]) -> Prepared {
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

/// The `hoyer` kind: measured and predicted Hoyer sparsity per sphere-constrained layer vs p.
fn hoyer_chart(title: &Option<String>, arms: &[String], results: &[RunResult]) -> Prepared {
    let groups = selected(groups(results), arms);
    let layers: Vec<&crate::record::SphereLayer> = groups
        .iter()
        .flat_map(|g| g.runs.iter())
        .filter(|r| r.outcome.status == crate::record::Status::Finished)
        .flat_map(|r| r.outcome.spheres.iter())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for l in &layers {
        if !names.contains(&l.layer) {
            names.push(l.layer.clone());
        }
    }
    names.sort_by_key(|l| layer_order(l));
    let mut series = Vec::new();
    type Pick = fn(&crate::record::SphereLayer) -> Option<f64>;
    let predictions: [(&str, Pick, (u32, u32)); 3] = [
        ("closed form, k = ½", |l| Some(l.closed_form), (10, 5)),
        ("Monte Carlo, k = ½", |l| Some(l.monte_carlo), (3, 4)),
        ("fitted k", |l| l.fitted, (14, 3)),
    ];
    for (i, name) in names.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let of_layer: Vec<&&crate::record::SphereLayer> =
            layers.iter().filter(|l| &l.layer == name).collect();
        let measured: Vec<(f64, f64)> = of_layer.iter().map(|l| (l.p, l.hoyer)).collect();
        series.push(Series::Line {
            label: format!("{name}: measured"),
            color,
            points: mean_by_x(&measured),
        });
        for (what, pick, dash) in predictions {
            let values: Vec<(f64, f64)> = of_layer
                .iter()
                .filter_map(|l| Some((l.p, pick(l)?)))
                .collect();
            if !values.is_empty() {
                series.push(Series::Predicted {
                    label: format!("{name}: {what}"),
                    color,
                    points: mean_by_x(&values),
                    dash,
                });
            }
        }
    }
    Prepared {
        title: title
            .clone()
            .unwrap_or_else(|| "Hoyer sparsity vs p".into()),
        x_label: "p".into(),
        y_label: "Hoyer sparsity".into(),
        log_x: true,
        log_y: false,
        integer_x: false,
        series,
    }
}

/// Tick label: integers without decimals; magnitudes below 10⁻³ in scientific notation (`1e-5`);
/// other values with at most three significant decimals, or more where the axis spans less than
/// `span` needs to tell neighbouring ticks apart (a tenth of the span must show).
fn tick(v: f64, span: f64) -> String {
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        // `+ 0.0` turns −0 (a tick at zero reached from below) into 0.
        return format!("{:.0}", v.round() + 0.0);
    }
    if v.abs() < 1e-3 {
        let s = format!("{v:.0e}");
        return s.replace("e-0", "e-");
    }
    let by_size = if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    let by_span = if span > 0.0 && span.is_finite() {
        (-(span / 10.0).log10()).ceil().max(0.0) as usize
    } else {
        0
    };
    let digits = by_size.max(by_span).min(9);
    let s = format!("{v:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn strip_unit(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

/// `(min, max)` of the values the figure must show, padded; positive-only for log axes.
fn extent(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let values: Vec<f64> = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.ln(), hi.ln());
        let pad = ((b - a) * 0.08).max(0.1);
        ((a - pad).exp(), (b + pad).exp())
    } else {
        let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-9) * 1e-3);
        (lo - pad, hi + pad)
    }
}

fn ranges(p: &Prepared) -> ((f64, f64), (f64, f64)) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for s in &p.series {
        match s {
            Series::Line { points, .. }
            | Series::Band { points, .. }
            | Series::Predicted { points, .. } => {
                for pt in points {
                    xs.extend([pt.x - pt.x_err, pt.x + pt.x_err]);
                    ys.extend([pt.y - pt.y_err, pt.y + pt.y_err]);
                }
            }
            Series::Reference { mean, std, .. } => ys.extend([mean - std, mean + std]),
        }
    }
    (
        extent(xs.into_iter(), p.log_x),
        extent(ys.into_iter(), p.log_y),
    )
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The legend corner that covers the fewest data points (corners are the outer 40% × 35% of the
/// plot, measured on the axes' own scales).
fn legend_corner(p: &Prepared, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let scale = |v: f64, lo: f64, hi: f64, log: bool| {
        let (v, lo, hi) = if log {
            (v.max(lo).ln(), lo.ln(), hi.ln())
        } else {
            (v, lo, hi)
        };
        (v - lo) / (hi - lo).max(f64::MIN_POSITIVE)
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for s in &p.series {
        match s {
            Series::Line { points: ps, .. }
            | Series::Band { points: ps, .. }
            | Series::Predicted { points: ps, .. } => {
                points.extend(
                    ps.iter()
                        .map(|pt| (scale(pt.x, x0, x1, p.log_x), scale(pt.y, y0, y1, p.log_y))),
                );
            }
            Series::Reference { mean, .. } => {
                let y = scale(*mean, y0, y1, p.log_y);
                points.extend((0..=10).map(|i| (f64::from(i) / 10.0, y)));
            }
        }
    }
    let count = |left: bool, low: bool| {
        points
            .iter()
            .filter(|(x, y)| {
                (if left { *x < 0.4 } else { *x > 0.6 })
                    && (if low { *y < 0.35 } else { *y > 0.65 })
            })
            .count()
    };
    [
        (count(false, true), SeriesLabelPosition::LowerRight),
        (count(true, true), SeriesLabelPosition::LowerLeft),
        (count(false, false), SeriesLabelPosition::UpperRight),
        (count(true, false), SeriesLabelPosition::UpperLeft),
    ]
    .into_iter()
    .min_by_key(|(n, _)| *n)
    .map_or(SeriesLabelPosition::LowerRight, |(_, pos)| pos)
}

fn draw_on<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    p: &Prepared,
    xr: X,
    yr: Y,
    (x_span, y_span): ((f64, f64), (f64, f64)),
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    area.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(xr, yr)?;
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(20)
        .y_labels(10)
        .x_label_formatter(&|v| {
            if p.integer_x && (v - v.round()).abs() > 1e-9 {
                String::new()
            } else {
                tick(*v, x_span.1 - x_span.0)
            }
        })
        .y_label_formatter(&|v| tick(*v, y_span.1 - y_span.0))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()?;
    for s in &p.series {
        let (Series::Line { color, .. }
        | Series::Band { color, .. }
        | Series::Predicted { color, .. }
        | Series::Reference { color, .. }) = s;
        let color = *color;
        let line = color.stroke_width(2);
        match s {
            Series::Reference {
                label, mean, std, ..
            } => {
                let (x0, x1) = x_span;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, mean - std), (x1, mean + std)],
                    color.mix(0.18).filled(),
                )))?;
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x0, *mean), (x1, *mean)],
                        8,
                        5,
                        line,
                    ))?
                    .label(format!("{label} (mean ± std)"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            }
            Series::Predicted {
                label,
                points,
                dash: (size, gap),
                ..
            } => {
                let (size, gap) = (*size, *gap);
                chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().map(|pt| (pt.x, pt.y)),
                        size,
                        gap,
                        line,
                    ))?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (6, 0)], line)
                            + PathElement::new(vec![(10, 0), (16, 0)], line)
                    });
            }
            Series::Line { label, points, .. } => {
                chart.draw_series(points.iter().map(|pt| {
                    ErrorBar::new_vertical(pt.x, pt.y - pt.y_err, pt.y, pt.y + pt.y_err, line, 8)
                }))?;
                chart.draw_series(points.iter().filter(|pt| pt.x_err > 0.0).map(|pt| {
                    ErrorBar::new_horizontal(pt.y, pt.x - pt.x_err, pt.x, pt.x + pt.x_err, line, 8)
                }))?;
                chart.draw_series(
                    points
                        .iter()
                        .map(|pt| Circle::new((pt.x, pt.y), 4, color.filled())),
                )?;
                chart
                    .draw_series(LineSeries::new(points.iter().map(|pt| (pt.x, pt.y)), line))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            }
            Series::Band { label, points, .. } => {
                let upper = points.iter().map(|pt| (pt.x, pt.y + pt.y_err));
                let lower = points.iter().rev().map(|pt| (pt.x, pt.y - pt.y_err));
                chart.draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    color.mix(0.18).filled(),
                )))?;
                chart
                    .draw_series(LineSeries::new(points.iter().map(|pt| (pt.x, pt.y)), line))?
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font((FAMILY, 13))
        .position(legend_corner(p, x_span, y_span))
        .draw()?;
    area.present()
}

/// Log-axis base: ticks at powers of 2 over less than three decades (compression ratios 2–50
/// get labels 2, 4, 8, 16, 32), powers of 10 beyond.
fn log_base(lo: f64, hi: f64) -> f64 {
    if hi / lo < 1000.0 { 2.0 } else { 10.0 }
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> DrawResult<DB> {
    area.fill(&WHITE)?;
    let n = b.categories.len().max(1) as f64;
    let top = b
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(m, s)| m + s))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.45; // head room for the legend above the bars
    let categories = b.categories.clone();
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("layer")
        .y_desc(&b.y_label)
        .x_labels(categories.len().max(1))
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                categories.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        // Percentages: no ticks in the legend's head room above 100.
        .y_label_formatter(&|v| {
            if *v > 100.0 + 1e-9 {
                String::new()
            } else {
                tick(*v, 100.0)
            }
        })
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()?;
    let k = b.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (j, (label, values)) in b.series.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
        chart
            .draw_series(values.iter().enumerate().map(|(i, (mean, _))| {
                Rectangle::new(
                    [(left(i), 0.0), (left(i) + width * 0.9, *mean)],
                    color.filled(),
                )
            }))?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart.draw_series(
            values
                .iter()
                .enumerate()
                .filter(|(_, (_, sd))| *sd > 0.0)
                .map(|(i, (m, sd))| {
                    let x = left(i) + width * 0.45;
                    ErrorBar::new_vertical(x, m - sd, *m, m + sd, BLACK.stroke_width(1), 6)
                }),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font((FAMILY, 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    area.present()
}

fn draw<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    let p = match chart {
        Chart::Bars(b) => return draw_bars(&area, b),
        Chart::Xy(p) => p,
    };
    let ((x0, x1), (y0, y1)) = ranges(p);
    let log_x = || (x0..x1).log_scale().base(log_base(x0, x1));
    let log_y = || (y0..y1).log_scale().base(log_base(y0, y1));
    let spans = ((x0, x1), (y0, y1));
    match (p.log_x, p.log_y) {
        (false, false) => draw_on(&area, p, x0..x1, y0..y1, spans),
        (true, false) => draw_on(&area, p, log_x(), y0..y1, spans),
        (false, true) => draw_on(&area, p, x0..x1, log_y(), spans),
        (true, true) => draw_on(&area, p, log_x(), log_y(), spans),
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a constant of this crate; failing to parse it is a build defect.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("embedded font {FAMILY} does not parse"));
    });
}

/// Size of every figure in pixels.
const SIZE: (u32, u32) = (960, 640);

/// Renders `spec` from `results` into `dir` as `<file>.svg` and `<file>.png`; returns the paths.
pub fn render(
    spec: &FigureSpec,
    results: &[RunResult],
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    let prepared = prepare(spec, results);
    let svg = dir.join(format!("{}.svg", spec.file()));
    let png = dir.join(format!("{}.png", spec.file()));
    let svg_tmp = svg.with_extension("svg.tmp");
    let png_tmp = png.with_extension("tmp.png");
    draw(
        SVGBackend::new(&svg_tmp, SIZE).into_drawing_area(),
        &prepared,
    )
    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
    draw(
        BitMapBackend::new(&png_tmp, SIZE).into_drawing_area(),
        &prepared,
    )
    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
    std::fs::rename(&svg_tmp, &svg)?;
    std::fs::rename(&png_tmp, &png)?;
    Ok(vec![svg, png])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sort_in_network_order() {
        let mut layers = vec![
            "head.weight",
            "hidden.1.weight",
            "stem.weight",
            "hidden.0.weight",
            "blocks.10.fc1.weight",
            "blocks.2.fc1.weight",
        ];
        layers.sort_by_key(|l| layer_order(l));
        assert_eq!(
            layers,
            vec![
                "stem.weight",
                "blocks.2.fc1.weight",
                "blocks.10.fc1.weight",
                "hidden.0.weight",
                "hidden.1.weight",
                "head.weight"
            ]
        );
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(20.0, 100.0), "20");
        assert_eq!(tick(2.5, 100.0), "2.5");
        assert_eq!(tick(0.125, 1.0), "0.125");
        assert_eq!(tick(87.34, 100.0), "87.3");
        assert_eq!(tick(-1.0, 10.0), "-1");
        // Small values on log axes (β sweeps) and narrow spans keep what tells ticks apart.
        assert_eq!(tick(1e-5, 1.0), "1e-5");
        assert_eq!(tick(-1e-12, 1.0), "0");
        assert_eq!(tick(3e-4, 1.0), "3e-4");
        assert_eq!(tick(0.9995, 0.002), "0.9995");
    }

    #[test]
    fn extent_pads_and_respects_log_axes() {
        let (lo, hi) = extent([2.0, 50.0].into_iter(), true);
        assert!(lo > 0.0 && lo < 2.0 && hi > 50.0);
        let (lo, hi) = extent([-1.0, 0.0, 1.0].into_iter(), true);
        assert!(
            lo > 0.0 && hi > 1.0,
            "non-positive values are ignored on log axes"
        );
        let (lo, hi) = extent([0.5, 0.5].into_iter(), false);
        assert!(
            lo < 0.5 && hi > 0.5,
            "a flat series still gets a non-empty range"
        );
        assert_eq!(extent(std::iter::empty(), false), (0.0, 1.0));
    }

    #[test]
    fn unknown_metric_and_arm_are_rejected_with_allowed_values() {
        let arms = vec![Arm {
            name: "dense".into(),
            label: "dense".into(),
            compare: Vec::new(),
        }];
        let err = FigureSpec::parse(
            &serde_json::json!({"kind": "final", "file": "f", "x": "compresion", "y": "test_accuracy"}),
            &arms,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.key, "x");
        assert!(err.message.contains("compression"));
        let err = FigureSpec::parse(
            &serde_json::json!({"kind": "epochs", "file": "f", "y": "test_accuracy", "arms": ["gmp"]}),
            &arms,
            &[],
        )
        .unwrap_err();
        assert!(err.message.contains("unknown arm `gmp`"));
        let sweep = vec!["optimizer.mu".to_string()];
        assert!(FigureSpec::parse(
            &serde_json::json!({"kind": "final", "file": "f", "x": "optimizer.mu", "y": "test_accuracy"}),
            &arms,
            &sweep
        )
        .is_ok());
    }
}
