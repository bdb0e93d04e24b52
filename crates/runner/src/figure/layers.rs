//! The `layers` kind: per-layer sparsity at the end of training, one bar per arm and layer
//! (layers in network order), with the target sparsity as a line.

use super::chart::{Bars, selected};
use crate::aggregate::{Group, RunResult, groups};

/// Sort key putting layers in network order: records keep layers in a map sorted by name, so the
/// stem goes first, the classifier (`head`) last, and numbers inside names compare as numbers
/// (`blocks.2` before `blocks.10`).
pub(super) fn layer_order(path: &str) -> (u8, Vec<(String, u64)>) {
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
pub(super) fn layer_bars(
    title: &Option<String>,
    target: f64,
    arms: &[String],
    results: &[RunResult],
) -> Bars {
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
}
