//! The `hoyer` kind: measured Hoyer sparsity of Lp-sphere layers against p, with the
//! gamma-hypothesis predictions (SPEC §1.2).

use super::chart::*;
use super::layers::layer_order;
use crate::aggregate::{RunResult, groups};

/// The `hoyer` kind: measured and predicted Hoyer sparsity per sphere-constrained layer vs p.
pub(super) fn hoyer_chart(
    title: &Option<String>,
    arms: &[String],
    results: &[RunResult],
) -> Prepared {
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
