//! `model_step/<model>-<round>`: the engine's dense SGD step on LeNet-300-100 and LeNet-5,
//! interleaved with the PyTorch reference ([`crate::reference`]) when torch is installed:
//! sparselab ÷ PyTorch throughput.

use crate::BenchOptions;
use crate::fixture::{BASELINE, bench_engine_step};
use crate::reference::{Reference, ReferenceStep};
use crate::timing::{Estimate, median, read_estimate, round_ratios};
use burn::tensor::Device;
use criterion::Criterion;
use serde::{Deserialize, Serialize};
use sparselab_runner::resolve::RunTables;
use std::path::Path;

/// The models sparselab is compared with PyTorch on (dense momentum SGD, the engine's step).
pub const PAIRED_MODELS: [&str; 2] = ["mlp-300-100", "lenet5"];
/// Rounds of the pairing: sparselab, PyTorch, sparselab, PyTorch, … (drift on the machine hits
/// both sides alike).
const PAIRED_ROUNDS: usize = 5;

/// One model's paired measurement.
///
/// Each side's step in a round is the **median** over that round's samples, and the ratio is the
/// **median over rounds** of the round's ratio (PyTorch's step ÷ sparselab's step in the same
/// round). Both are medians because the machines this runs on are shared: a stretch of
/// interference slows a few samples or one round of one side, which moves a mean, and so a ratio
/// of means, by as much as the difference being measured. The same estimator serves both sides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairedBench {
    /// Model.
    pub model: String,
    /// sparselab's engine step, per round.
    pub sparselab: Vec<Estimate>,
    /// PyTorch's step, per round (empty without torch).
    pub pytorch: Vec<ReferenceStep>,
    /// sparselab samples/s (batch / the median over rounds of the round's median step).
    pub sparselab_samples_per_sec: f64,
    /// PyTorch samples/s, if measured (the same estimator).
    pub pytorch_samples_per_sec: Option<f64>,
    /// Per round, sparselab's throughput ÷ PyTorch's (> 1: sparselab is faster).
    pub round_ratios: Vec<f64>,
    /// The median of [`Self::round_ratios`], if PyTorch was measured.
    pub ratio: Option<f64>,
}

/// Measures [`PAIRED_MODELS`] against the reference, interleaved round by round.
pub fn measure(
    c: &mut Criterion,
    opts: &BenchOptions,
    device: &Device,
    criterion_dir: &Path,
    reference: Option<&Reference>,
) -> anyhow::Result<Vec<PairedBench>> {
    let threads = sparselab_runner::jobs::cores();
    let mut out = Vec::new();
    for model in PAIRED_MODELS {
        let plain = RunTables::named(model, BASELINE);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=PAIRED_ROUNDS {
            let id = format!("{model}-{round}");
            bench_engine_step(c, device, opts.batch, &plain, ("model_step", &id))?;
            ours.push(read_estimate(criterion_dir, "model_step", &id)?);
            if let Some(r) = reference {
                theirs.push(r.step(model, opts.batch, threads, opts.seconds)?);
            }
        }
        let ours_steps: Vec<f64> = ours.iter().map(|e| e.median).collect();
        let theirs_steps: Vec<f64> = theirs.iter().map(|r| r.median_step_seconds).collect();
        let ratios = round_ratios(&ours_steps, &theirs_steps);
        out.push(PairedBench {
            model: model.to_string(),
            sparselab: ours,
            pytorch: theirs,
            sparselab_samples_per_sec: opts.batch as f64 / median(&ours_steps),
            pytorch_samples_per_sec: (!theirs_steps.is_empty())
                .then(|| opts.batch as f64 / median(&theirs_steps)),
            ratio: (!ratios.is_empty()).then(|| median(&ratios)),
            round_ratios: ratios,
        });
    }
    Ok(out)
}

/// The section of `bench.md`.
pub fn markdown(batch: usize, rows: &[PairedBench]) -> String {
    let mut md = format!(
        "## sparselab vs PyTorch: dense training step, batch {batch}\n\n\
         The engine's whole step (`Trainee::step`: forward, cross-entropy, backward, momentum SGD, \
         loss read back) against `xtask/reference/pytorch_reference.py step` (same model, batch, \
         input shape and optimiser, the same number of threads), measured alternately: \
         sparselab, PyTorch, sparselab, PyTorch, … Each round's step is the median over its \
         samples; a round's ratio is PyTorch's step ÷ sparselab's in that round (> 1: sparselab is \
         faster), and the ratio is the median over rounds (samples/s: batch ÷ the median step).\n\n\
         | model | sparselab step (ms), per round | PyTorch step (ms), per round | ratio per round | sparselab samples/s | PyTorch samples/s | ratio (median) |\n|---|---|---|---|---|---|---|\n",
    );
    let list = |v: Vec<f64>, scale: f64| {
        if v.is_empty() {
            "–".to_string()
        } else {
            v.iter()
                .map(|t| format!("{:.3}", t * scale))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} |\n",
            r.model,
            list(r.sparselab.iter().map(|e| e.median).collect(), 1e3),
            list(
                r.pytorch.iter().map(|p| p.median_step_seconds).collect(),
                1e3
            ),
            list(r.round_ratios.clone(), 1.0),
            r.sparselab_samples_per_sec,
            r.pytorch_samples_per_sec
                .map_or("–".into(), |s| format!("{s:.0}")),
            r.ratio.map_or("–".into(), |x| format!("{x:.2}×")),
        ));
    }
    md.push('\n');
    md
}
