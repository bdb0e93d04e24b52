//! `train_step/<optimizer>`, `optimizer_step/<optimizer>` and `optimizer_step_ops/<optimizer>`:
//! every registered optimiser (proximal ones once with each regularizer they accept: the prox,
//! and any reweighting or Newton solve, is part of their step) on the benchmarked model, its
//! whole training step, its update alone, and its update with every fused form off; and both
//! relative to plain SGD's, measured alternately with SGD round by round ([`paired_with_sgd`]).

use crate::BenchOptions;
use crate::fixture::{BASELINE, MODEL, Setup, grads, setup};
use crate::timing::{BASELINE_ROUNDS, Estimate, alternating_ratios, median, read_estimate, spread};
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use criterion::Criterion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sparselab_models::{Architecture, Model};
use sparselab_runner::resolve::{RunTables, resolve};
use std::path::Path;
use std::time::{Duration, Instant};

/// One optimiser's measurements.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OptimizerBench {
    /// Registered name.
    pub optimizer: String,
    /// Regularizer carried (proximal optimisers).
    pub regularizer: Option<String>,
    /// Full training step.
    pub train_step: Estimate,
    /// Training samples per second (batch / mean train step).
    pub samples_per_sec: f64,
    /// Optimiser step alone.
    pub optimizer_step: Estimate,
    /// Optimiser step alone with every fused form off (`sparselab_core::fused::with_tensor_ops`):
    /// what it costs as tensor ops, as on a backend without fused forms.
    pub tensor_op_step: Estimate,
    /// Tensor-op step time ÷ optimiser step time.
    pub fused_speedup: f64,
    /// Optimiser step time ÷ SGD's: the median of [`VsSgd::update`].
    pub step_ratio_vs_sgd: f64,
    /// Full training step time ÷ SGD's: the median of [`VsSgd::train`].
    pub train_ratio_vs_sgd: f64,
    /// The rounds of the pairing with SGD.
    pub vs_sgd: VsSgd,
}

/// Steps after which an optimiser benchmark starts again from the initial model and a fresh
/// optimiser state, so every method and both forms of its update are timed over the same
/// training steps. Left to run on, the cost of a step drifts with the state (the zeros a prox
/// makes, a reweighting's weights), and a slower benchmark would be timed on an earlier state
/// than a faster one.
const RESTART_EVERY: u64 = 50;

/// What an optimiser benchmark times.
#[derive(Clone, Copy)]
pub(crate) enum Timed {
    /// Forward, backward and update.
    TrainStep,
    /// The update alone.
    Update,
    /// The update alone with every fused form off (`sparselab_core::fused::with_tensor_ops`).
    UpdateAsTensorOps,
}

/// One benchmark case's training steps on the fixed batch of [`setup`], started again from the
/// initial model and a fresh optimiser state every [`RESTART_EVERY`] steps.
pub(crate) struct CaseSteps<'a> {
    base: Device,
    s: Setup,
    name: &'a str,
    regularizer: Option<&'a str>,
    state: Option<(Model, ModuleOptimizer)>,
    steps: u64,
}

impl<'a> CaseSteps<'a> {
    /// Resolves the case once here, so the restarts inside a measurement cannot fail.
    pub(crate) fn new(
        base: &Device,
        batch: usize,
        name: &'a str,
        regularizer: Option<&'a str>,
    ) -> anyhow::Result<Self> {
        let s = setup(base, batch)?;
        optimizer_for(name, regularizer, &s.model)?;
        Ok(Self {
            base: base.clone(),
            s,
            name,
            regularizer,
            state: None,
            steps: 0,
        })
    }

    /// The next step starts from the initial model.
    fn restart(&mut self) {
        self.steps = 0;
    }

    /// One step (a restart, when due, is not timed); the time of what `timed` names.
    fn step(&mut self, timed: Timed) -> Duration {
        if self.steps.is_multiple_of(RESTART_EVERY) {
            let batch = self.s.x.dims()[0];
            let fresh = setup(&self.base, batch).expect("built in new").model;
            let optim =
                optimizer_for(self.name, self.regularizer, &fresh).expect("resolved in new");
            self.state = Some((fresh, optim));
        }
        self.steps += 1;
        let (m, mut optim) = self.state.take().expect("set above");
        let s = &self.s;
        let t = Instant::now();
        let g = grads(s, &m);
        s.device.sync().expect("device sync");
        let update = Instant::now();
        let m = match timed {
            Timed::UpdateAsTensorOps => {
                sparselab_core::fused::with_tensor_ops(|| optim.step(0.01, m, g))
            }
            _ => optim.step(0.01, m, g),
        };
        s.device.sync().expect("device sync");
        let elapsed = match timed {
            Timed::TrainStep => t.elapsed(),
            _ => update.elapsed(),
        };
        self.state = Some((m, optim));
        elapsed
    }

    /// The median of `timed` over [`RESTART_EVERY`] steps from the initial model (seconds).
    pub(crate) fn round(&mut self, timed: Timed) -> f64 {
        self.restart();
        let times: Vec<f64> = (0..RESTART_EVERY)
            .map(|_| self.step(timed).as_secs_f64())
            .collect();
        median(&times)
    }
}

/// A case's step against SGD's, measured alternately round by round.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VsSgd {
    /// Per round, the case's median training step ÷ SGD's.
    pub train: Vec<f64>,
    /// Per round, the case's median update ÷ SGD's.
    pub update: Vec<f64>,
}

/// Measures `case` against `sgd` in alternating rounds ([`alternating_ratios`]) of
/// [`RESTART_EVERY`] steps each, training step and update in separate rounds. The same pairing
/// as the PyTorch rows and for the same reason: the criterion means of two cases are taken
/// minutes apart, and drift on a shared machine moves such a ratio by more than the differences
/// measured.
fn paired_with_sgd(sgd: &mut CaseSteps, case: &mut CaseSteps) -> VsSgd {
    let mut out = VsSgd::default();
    for (timed, ratios) in [
        (Timed::TrainStep, &mut out.train),
        (Timed::Update, &mut out.update),
    ] {
        *ratios = alternating_ratios(|| sgd.round(timed), || case.round(timed));
    }
    out
}

/// The method of one benchmark case, as plain data.
fn plain(name: &str, regularizer: Option<&str>) -> RunTables {
    RunTables {
        regularizer: regularizer.map_or(Value::Null, |r| json!({ "name": r })),
        ..RunTables::named(MODEL, name)
    }
}

/// Every measured pair: dense optimisers alone, proximal ones with every regularizer they
/// accept (the prox is part of their step); exactly the pairs an experiment file may name.
fn cases() -> Vec<(String, Option<String>)> {
    let regularizers = sparselab_regularizers::registry().names();
    let mut out = Vec::new();
    for name in sparselab_optimizers::registry().names() {
        for reg in std::iter::once(None).chain(regularizers.iter().map(|r| Some(*r))) {
            if resolve(&plain(name, reg), "").is_ok() {
                out.push((name.to_string(), reg.map(str::to_string)));
            }
        }
    }
    out
}

fn optimizer_for(
    name: &str,
    regularizer: Option<&str>,
    model: &Model,
) -> anyhow::Result<ModuleOptimizer> {
    let parts = resolve(&plain(name, regularizer), "")?.methods;
    Ok(parts
        .optimizer
        .build(&model.describe(), parts.regularizer)?
        .optim)
}

fn case_id(name: &str, regularizer: Option<&str>) -> String {
    regularizer.map_or_else(|| name.to_string(), |r| format!("{name}+{r}"))
}

/// Measures every case of [`cases`]; criterion writes under `criterion_dir`.
pub fn measure(
    c: &mut Criterion,
    opts: &BenchOptions,
    device: &Device,
    criterion_dir: &Path,
) -> anyhow::Result<Vec<OptimizerBench>> {
    let cases = cases();
    let mut sgd = CaseSteps::new(device, opts.batch, BASELINE, None)?;
    let mut vs_sgd = Vec::new();
    for (name, reg) in &cases {
        let id = case_id(name, reg.as_deref());
        let mut case = CaseSteps::new(device, opts.batch, name, reg.as_deref())?;
        for (group, timed) in [
            ("train_step", Timed::TrainStep),
            ("optimizer_step", Timed::Update),
            ("optimizer_step_ops", Timed::UpdateAsTensorOps),
        ] {
            case.restart();
            c.bench_function(&format!("{group}/{id}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| case.step(timed)).sum())
            });
        }
        vs_sgd.push(paired_with_sgd(&mut sgd, &mut case));
    }
    let mut rows = Vec::new();
    for ((name, reg), vs_sgd) in cases.iter().zip(vs_sgd) {
        let id = case_id(name, reg.as_deref());
        let train_step = read_estimate(criterion_dir, "train_step", &id)?;
        let optimizer_step = read_estimate(criterion_dir, "optimizer_step", &id)?;
        let tensor_op_step = read_estimate(criterion_dir, "optimizer_step_ops", &id)?;
        rows.push(OptimizerBench {
            fused_speedup: tensor_op_step.mean / optimizer_step.mean,
            tensor_op_step,
            optimizer: name.clone(),
            regularizer: reg.clone(),
            samples_per_sec: opts.batch as f64 / train_step.mean,
            train_step,
            optimizer_step,
            step_ratio_vs_sgd: median(&vs_sgd.update),
            train_ratio_vs_sgd: median(&vs_sgd.train),
            vs_sgd,
        });
    }
    Ok(rows)
}

/// The section of `bench.md`.
pub fn markdown(rows: &[OptimizerBench], batch: usize) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "## Optimisers: LeNet-300-100, batch {}\n\nTimes: mean over criterion samples (95% \
         interval). `train step` = forward + backward + optimiser step; `optimizer step` = the \
         update alone; `as tensor ops` = the update with every fused form switched off (one pass \
         over memory per tensor op, as on a backend without fused forms), and `fused speed-up` \
         its time ÷ the optimizer step's.\n\n\
         Ratios to SGD: paired, measured alternately (SGD, the case, SGD, the case, … {} rounds \
         of {} steps from the initial model each); a round's ratio is the case's median step ÷ \
         SGD's in the same round, and the table gives the median over rounds with the rounds' \
         range. SGD's own row, paired with a second copy of itself, shows the noise floor.\n\n\
         | optimizer | regularizer | train step (ms) | samples/s | train step / SGD's (paired) | optimizer step (µs) | optimizer step / SGD's (paired) | as tensor ops (µs) | fused speed-up |\n|---|---|---|---|---|---|---|---|---|\n",
        batch, BASELINE_ROUNDS, RESTART_EVERY,
    ));
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {:.3} [{:.3}, {:.3}] | {:.0} | {} | {:.1} [{:.1}, {:.1}] | {} | {:.1} | {:.2}× |\n",
            r.optimizer,
            r.regularizer.as_deref().unwrap_or("–"),
            r.train_step.mean * 1e3,
            r.train_step.ci95.0 * 1e3,
            r.train_step.ci95.1 * 1e3,
            r.samples_per_sec,
            spread(&r.vs_sgd.train),
            r.optimizer_step.mean * 1e6,
            r.optimizer_step.ci95.0 * 1e6,
            r.optimizer_step.ci95.1 * 1e6,
            spread(&r.vs_sgd.update),
            r.tensor_op_step.mean * 1e6,
            r.fused_speedup
        ));
    }
    md
}
