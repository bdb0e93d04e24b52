//! `loss_step/<case>`: the engine's whole training step (`Trainee::step`: forward with feature
//! taps when a term is due, loss terms, backward, SGD) on the CKA-SR CPU model ([`LOSS_MODEL`])
//! without a loss term, with `cka-sr` at its defaults (8 samples every 5 steps) and with full
//! CKA-SR (the whole batch every step), reported relative to the step without, measured
//! alternately with it ([`paired_with_no_loss`]; SPEC §1.3's cost controls; successive
//! iterations are successive steps, so a term due every b steps is averaged over its cycle).

use crate::fixture::{BASELINE, EngineSteps, ROUND_STEPS, bench_engine_step};
use crate::timing::{BASELINE_ROUNDS, Estimate, alternating_ratios, median, read_estimate, spread};
use burn::tensor::Device;
use criterion::Criterion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sparselab_runner::resolve::RunTables;
use std::path::Path;

/// The model of the loss-term benchmarks: the residual MLP of `experiments/cka-*.toml`.
pub const LOSS_MODEL: &str = "resmlp";
/// Its width and depth (those of the CKA-SR ablations).
pub const LOSS_MODEL_SIZE: (usize, usize) = (128, 4);

/// The training step with one set of loss terms.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LossBench {
    /// Case name (`none`, `cka-sr`, `cka-sr-full`).
    pub case: String,
    /// The loss-term tables.
    pub losses: Vec<Value>,
    /// Mean training step.
    pub train_step: Estimate,
    /// Step time ÷ the step without loss terms: the median of [`Self::rounds_vs_none`].
    pub ratio_vs_none: f64,
    /// Per round of the pairing ([`paired_with_no_loss`]), the mean step with the terms ÷ the
    /// mean step without.
    pub rounds_vs_none: Vec<f64>,
}

/// The loss-term cases: none, CKA-SR at its defaults, full CKA-SR.
fn loss_cases() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("none", Vec::new()),
        ("cka-sr", vec![json!({ "name": "cka-sr" })]),
        (
            "cka-sr-full",
            vec![json!({ "name": "cka-sr", "samples": 0, "every": 1 })],
        ),
    ]
}

/// SGD on [`LOSS_MODEL`] with `losses`, as plain data.
fn loss_plain(losses: &[Value]) -> RunTables {
    let (width, depth) = LOSS_MODEL_SIZE;
    RunTables {
        model: json!({ "name": LOSS_MODEL, "width": width, "depth": depth }),
        losses: losses.to_vec(),
        ..RunTables::named(LOSS_MODEL, BASELINE)
    }
}

/// Per round, the step with `losses` ÷ the step without, measured alternately
/// ([`alternating_ratios`]).
fn paired_with_no_loss(base: &Device, batch: usize, losses: &[Value]) -> anyhow::Result<Vec<f64>> {
    let mut without = EngineSteps::new(base, batch, &loss_plain(&[]))?;
    let mut with = EngineSteps::new(base, batch, &loss_plain(losses))?;
    Ok(alternating_ratios(|| without.round(), || with.round()))
}

/// Measures every case of [`loss_cases`] at batch `batch`; criterion writes under
/// `criterion_dir`.
pub fn measure(
    c: &mut Criterion,
    device: &Device,
    batch: usize,
    criterion_dir: &Path,
) -> anyhow::Result<Vec<LossBench>> {
    let mut loss_pairs = Vec::new();
    for (case, losses) in loss_cases() {
        bench_engine_step(c, device, batch, &loss_plain(&losses), ("loss_step", case))?;
        loss_pairs.push(paired_with_no_loss(device, batch, &losses)?);
    }
    let mut loss_rows = Vec::new();
    for ((case, losses), rounds) in loss_cases().into_iter().zip(loss_pairs) {
        let train_step = read_estimate(criterion_dir, "loss_step", case)?;
        loss_rows.push(LossBench {
            case: case.to_string(),
            losses,
            train_step,
            ratio_vs_none: median(&rounds),
            rounds_vs_none: rounds,
        });
    }
    Ok(loss_rows)
}

/// The section of `bench.md`.
pub fn markdown(loss_rows: &[LossBench]) -> String {
    let mut md = String::new();
    let (width, depth) = LOSS_MODEL_SIZE;
    md.push_str(&format!(
        "\n## Loss terms\n\nThe engine's whole training step (`Trainee::step`, SGD) on `{LOSS_MODEL}` \
         (width {width}, depth {depth}: one stage of {depth} blocks, {} pairs). Times: mean over \
         criterion samples (95% interval). Ratio to the same step without a loss term: paired, \
         measured alternately (without, with, … {} rounds of {} steps each, whole cycles of a \
         term due every few steps); a round's ratio is the mean step with the terms ÷ the mean \
         step without in the same round, and the column gives the median over rounds with the \
         rounds' range. The `none` row pairs the plain step with a second copy of itself: the \
         noise floor.\n\n\
         | case | loss terms | train step (ms) | step / step without (paired) |\n|---|---|---|---|\n",
        depth * (depth - 1) / 2,
        BASELINE_ROUNDS,
        ROUND_STEPS,
    ));
    for r in loss_rows {
        md.push_str(&format!(
            "| {} | {} | {:.3} [{:.3}, {:.3}] | {} |\n",
            r.case,
            if r.losses.is_empty() {
                "–".to_string()
            } else {
                r.losses
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            r.train_step.mean * 1e3,
            r.train_step.ci95.0 * 1e3,
            r.train_step.ci95.1 * 1e3,
            spread(&r.rounds_vs_none)
        ));
    }
    md
}
