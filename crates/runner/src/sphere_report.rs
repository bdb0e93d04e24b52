//! The Hoyer sparsity of sphere-constrained layers against the gamma hypothesis (SPEC §1.2),
//! computed once at the end of a run whose optimiser holds weights on unit Lp spheres.
//!
//! For each constrained layer with exponent p and fan-in n: the measured Hoyer sparsity (mean
//! over units), the closed form and a Monte Carlo estimate under Gaussian gradients
//! (`k = ½`, `a = 1/(2(p−1))`), and a Monte Carlo estimate with the gamma shape fitted to the
//! layer's dual magnitudes `|v| = |w|^{p−1}` (`a = 1/(p−1)`). Monte Carlo draws come from the
//! run's `"hoyer-prediction"` random stream, so the report is reproducible.

use crate::aggregate::{RunResult, groups};
use crate::record::{SphereLayer, Status};
use crate::trainee::Trainee;
use sparselab_core::ParamInfo;
use sparselab_core::param::host_values;
use sparselab_core::rng::stream;
use sparselab_metrics::gamma_hoyer::{closed_form, fit_shape, monte_carlo};
use sparselab_metrics::hoyer::layer_hoyer;
use sparselab_metrics::stats::summarize;

/// Monte Carlo draws per estimate (each draw is one unit of n weights).
const DRAWS: usize = 200;

/// The report for a trained run: every layer its optimiser declares on a sphere
/// ([`Trainee::sphere_exponents`]); empty when it declares none.
pub fn of_trainee(trainee: &Trainee, seed: u64) -> Vec<SphereLayer> {
    let constrained: Vec<(&ParamInfo, f64)> = (trainee.table().iter())
        .zip(trainee.sphere_exponents())
        .filter_map(|(info, p)| p.map(|p| (info, p)))
        .collect();
    if constrained.is_empty() {
        return Vec::new();
    }
    let ids: Vec<_> = constrained.iter().map(|(i, _)| i.id).collect();
    let values = host_values(trainee.model(), &ids);
    let layers: Vec<(&ParamInfo, f64, &[f32])> = constrained
        .iter()
        .zip(&values)
        .map(|((info, p), v)| (*info, *p, v.as_slice()))
        .collect();
    sphere_report(&layers, seed)
}

/// The report for `layers`: `(description, p, host values)` of every constrained weight tensor.
pub fn sphere_report(layers: &[(&ParamInfo, f64, &[f32])], seed: u64) -> Vec<SphereLayer> {
    let mut rng = stream(seed, "hoyer-prediction");
    layers
        .iter()
        .map(|&(info, p, values)| {
            let fan_in = info.numel() / info.units();
            let gaussian = 1.0 / (2.0 * (p - 1.0));
            let duals: Vec<f64> = values
                .iter()
                .map(|w| f64::from(w.abs()).powf(p - 1.0))
                .collect();
            let fitted_k = fit_shape(&duals);
            SphereLayer {
                layer: info.path.clone(),
                p,
                fan_in,
                hoyer: layer_hoyer(info, values),
                closed_form: closed_form(fan_in, 0.5, gaussian),
                monte_carlo: monte_carlo(fan_in, 0.5, gaussian, DRAWS, &mut rng),
                fitted_k,
                fitted: fitted_k.map(|k| monte_carlo(fan_in, k, 1.0 / (p - 1.0), DRAWS, &mut rng)),
            }
        })
        .collect()
}

/// `hoyer.md`: per arm, sweep point and constrained layer, the measured Hoyer sparsity (mean ±
/// std over seeds) and each prediction with its error (prediction − measured), then the mean
/// absolute error of each predictor. `None` when no run has a sphere-constrained layer.
pub fn markdown(results: &[RunResult]) -> Option<String> {
    if results.iter().all(|r| r.outcome.spheres.is_empty()) {
        return None;
    }
    let mut out = String::from(
        "# Hoyer sparsity of Lp-sphere layers: measured vs the gamma hypothesis (SPEC §1.2)\n\n\
         Measured: mean ± std over seeds at the end of training. Predictions: closed form and \
         Monte Carlo under Gaussian gradients (k = ½, a = 1/(2(p−1))), and Monte Carlo with k \
         fitted by maximum likelihood to the layer's dual magnitudes (a = 1/(p−1)). Errors are \
         prediction − measured.\n\n\
         | arm | layer | p | n | measured | closed form (err) | Monte Carlo (err) | fitted k | fitted-k MC (err) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut errors: [Vec<f64>; 3] = Default::default();
    let mean = |v: &[f64]| summarize(v).map(|s| s.mean);
    for g in groups(results) {
        let runs: Vec<&RunResult> = g
            .runs
            .iter()
            .copied()
            .filter(|r| r.outcome.status == Status::Finished)
            .collect();
        let Some(first) = runs.first() else { continue };
        for layer in &first.outcome.spheres {
            let same: Vec<&SphereLayer> = runs
                .iter()
                .filter_map(|r| r.outcome.spheres.iter().find(|l| l.layer == layer.layer))
                .collect();
            let pick = |f: fn(&SphereLayer) -> Option<f64>| -> Vec<f64> {
                same.iter().filter_map(|l| f(l)).collect()
            };
            let Some(measured) = summarize(&pick(|l| Some(l.hoyer))) else {
                continue;
            };
            let cell = |v: Option<f64>, errs: &mut Vec<f64>| match v {
                Some(v) => {
                    errs.push(v - measured.mean);
                    format!("{v:.3} ({:+.3})", v - measured.mean)
                }
                None => "–".into(),
            };
            let closed = cell(mean(&pick(|l| Some(l.closed_form))), &mut errors[0]);
            let mc = cell(mean(&pick(|l| Some(l.monte_carlo))), &mut errors[1]);
            let k = mean(&pick(|l| l.fitted_k)).map_or("–".into(), |k| format!("{k:.3}"));
            let fitted = cell(mean(&pick(|l| l.fitted)), &mut errors[2]);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} ± {:.3} | {closed} | {mc} | {k} | {fitted} |\n",
                g.display(),
                layer.layer,
                layer.p,
                layer.fan_in,
                measured.mean,
                measured.std,
            ));
        }
    }
    out.push_str("\nMean absolute error over the rows above:");
    for (name, errs) in ["closed form", "Monte Carlo", "fitted-k Monte Carlo"]
        .iter()
        .zip(&errors)
    {
        let mae = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len().max(1) as f64;
        out.push_str(&format!(" {name} {mae:.3};"));
    }
    out.pop();
    out.push_str(".\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::WeightKind;

    /// Weights drawn exactly under the hypothesis (|w| = X^a per unit, X ~ Gamma(k)) are
    /// predicted by the fitted-k estimate.
    #[test]
    fn weights_drawn_under_the_hypothesis_are_predicted() {
        let (p, k, n, units) = (1.5, 0.8, 200, 64);
        let a = 1.0 / (p - 1.0);
        let mut rng = stream(5, "test");
        let values: Vec<f32> = (0..n * units)
            .map(|_| {
                (a * sparselab_metrics::gamma_hoyer::ln_gamma_variate(k, &mut rng)).exp() as f32
            })
            .collect();
        let info = ParamInfo::weight(WeightKind::Linear, vec![n, units]);
        let report = sphere_report(&[(&info, p, &values)], 1);
        let r = &report[0];
        assert_eq!(r.fan_in, n);
        assert!((r.fitted_k.unwrap() - k).abs() < 0.05, "{r:?}");
        assert!((r.fitted.unwrap() - r.hoyer).abs() < 0.02, "{r:?}");
    }
}
