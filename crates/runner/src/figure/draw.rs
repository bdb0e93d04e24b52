//! Drawing a prepared chart with plotters: axes, ticks, legends, lines, bands, bars; the
//! embedded font; SVG and PNG backends.

use super::chart::{Bars, Chart, PALETTE, Prepared, Series};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::sync::Once;

/// Font for PNG output (DejaVu Sans, see `assets/LICENSE-DejaVu`).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "DejaVu Sans";

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

pub(super) fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    chart: &Chart,
) -> DrawResult<DB> {
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

pub(super) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a constant of this crate; failing to parse it is a build defect.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("embedded font {FAMILY} does not parse"));
    });
}

/// Size of every figure in pixels.
pub(super) const SIZE: (u32, u32) = (960, 640);

#[cfg(test)]
mod tests {
    use super::*;

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
}
