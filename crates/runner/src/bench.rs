//! Throughput benchmarks (`cargo xtask bench`), measured with criterion.
//!
//! On LeNet-300-100 with Fashion-MNIST-shaped inputs at batch 128 on the chosen device:
//!
//! - `train_step/<optimizer>`: one full training step (forward, backward, optimiser step) →
//!   training samples per second;
//! - `optimizer_step/<optimizer>`: the optimiser step alone (gradients computed outside the
//!   timed region);
//! - both relative to plain SGD's, measured alternately with SGD round by round
//!   ([`paired_with_sgd`]), the ratios issue #11's "≤ 1.10× SGD" goals are about.
//!
//! - `loss_step/<case>`: the whole training step of the engine (`Trainee::step`: forward with
//!   feature taps when a term is due, loss terms, backward, SGD) on the CKA-SR CPU model
//!   ([`LOSS_MODEL`]) without a loss term, with `cka-sr` at its defaults (8 samples every 5 steps)
//!   and with full CKA-SR (the whole batch every step), reported relative to the step without,
//!   measured alternately with it ([`paired_with_no_loss`]; SPEC §1.3's cost controls;
//!   successive iterations are successive steps, so a term due every b steps is averaged over
//!   its cycle).
//!
//! - `bound/lpsgd_powers`: LpSGD's three powers per constrained weight alone, on flex
//!   ([`lpsgd_bound`]): with SGD's step and update, a lower bound on LpSGD's step ÷ SGD's that no
//!   step taking those powers can beat on the machine.
//!
//! - `pruned_step/<topology>`: the engine's step of the model pruned to 90 % by GMP, SET and RigL,
//!   long after pruning, paired with the dense step, and the subnormal values its weights and
//!   optimiser state hold ([`pruned_step`]).
//!
//! - `topology_update/<topology>`: one mask update of every registered topology (host side: the
//!   ranking, drop and regrowth on copies of the weights and of the dense gradient), reported
//!   per update and amortised over its default update interval, relative to SGD's train step.
//!
//! - `model_step/<model>-<round>`: the engine's dense SGD step on LeNet-300-100 and LeNet-5,
//!   interleaved with the PyTorch reference ([`crate::reference`]) when torch is installed:
//!   sparselab ÷ PyTorch throughput, the ratio issue #11 targets.
//!
//! Every registered optimiser is measured, proximal ones once with each regularizer they accept
//! (the prox, and any reweighting or Newton solve, is part of their step). Results are
//! criterion's mean estimates with 95% intervals, written to `bench.json` and `bench.md`. Timings are never asserted in tests: this is where they live.

use crate::device::{DeviceChoice, select};
use crate::env::Env;
use crate::resolve::{Plain, resolve};
use crate::store::write_atomic;
use anyhow::Context;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::Criterion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_optimizers::SparseOptimizer;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod lpsgd_bound;
mod pruned_step;
use lpsgd_bound::{LpSgdBound, PowerWork};

/// The benchmarked model.
const MODEL: &str = "mlp-300-100";
/// The model of the loss-term benchmarks: the residual MLP of `experiments/cka-*.toml`.
pub const LOSS_MODEL: &str = "resmlp";
/// Its width and depth (those of the CKA-SR ablations).
pub const LOSS_MODEL_SIZE: (usize, usize) = (128, 4);

/// The optimiser every ratio is relative to (plain momentum SGD).
const BASELINE: &str = sparselab_optimizers::sgd::Sgd::NAME;

/// Issue #11's goal for every optimiser's training step, relative to SGD's.
const STEP_GOAL_VS_SGD: f64 = 1.10;

/// What to measure and where to write it.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Device choice.
    pub device: DeviceChoice,
    /// Batch size.
    pub batch: usize,
    /// Output directory (`bench.json`, `bench.md`, criterion's raw data under `criterion/`).
    pub out: PathBuf,
    /// Seconds of measurement per benchmark.
    pub seconds: f64,
    /// The PyTorch reference script (`xtask/reference/pytorch_reference.py`).
    pub reference_script: PathBuf,
}

/// Criterion's estimate of one benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean time per iteration (seconds).
    pub mean: f64,
    /// 95% interval of the mean (seconds).
    pub ci95: (f64, f64),
    /// Median over criterion's samples of the time per iteration (seconds).
    pub median: f64,
}

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

/// One topology's update cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopologyBench {
    /// Registered name.
    pub topology: String,
    /// One mask update.
    pub update: Estimate,
    /// Steps between updates (its default config).
    pub every: Option<u64>,
    /// Update time ÷ interval ÷ SGD's train step (the amortised overhead per step).
    pub amortised_vs_sgd_step: Option<f64>,
}

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

/// The engine's whole training step (`Trainee::step`) of one method on one fixed batch:
/// successive calls are successive steps, each read back to the host.
struct EngineSteps {
    trainee: crate::train::Trainee,
    data: sparselab_data::Batch,
    step: usize,
}

impl EngineSteps {
    fn new(base: &Device, batch: usize, plain: &Plain) -> anyhow::Result<Self> {
        let ctx = sparselab_topology::TopologyContext {
            total_steps: 10_000,
            steps_per_epoch: 430,
            seed: 0,
        };
        Self::in_context(base, batch, plain, ctx)
    }

    /// Steps of `plain` whose topology schedules its updates over `ctx.total_steps`.
    fn in_context(
        base: &Device,
        batch: usize,
        plain: &Plain,
        ctx: sparselab_topology::TopologyContext,
    ) -> anyhow::Result<Self> {
        let config = crate::spec::RunConfig {
            data: sparselab_data::DataConfig::default(),
            train: crate::schedule::TrainConfig {
                batch,
                ..Default::default()
            },
            method: resolve(plain, "")?.0,
            seed: 0,
        };
        let trainee = crate::train::Trainee::new(&config, INPUT, base, ctx)?;
        let s = setup(base, batch)?;
        let data = sparselab_data::Batch {
            images: s.x,
            labels: s.y,
            len: batch,
        };
        Ok(Self {
            trainee,
            data,
            step: 0,
        })
    }

    /// One step; its loss, read back.
    fn step(&mut self) -> f64 {
        self.step += 1;
        let (loss, _) = self.trainee.step(self.data.clone(), 0.01, self.step);
        loss.into_scalar::<f64>()
    }

    /// The **mean** step over [`LOSS_ROUND_STEPS`] steps (seconds): a loss term due every `b`
    /// steps is averaged over whole cycles, where a median would leave its steps out.
    fn round(&mut self) -> f64 {
        let t = Instant::now();
        for _ in 0..LOSS_ROUND_STEPS {
            std::hint::black_box(self.step());
        }
        t.elapsed().as_secs_f64() / LOSS_ROUND_STEPS as f64
    }
}

/// Times [`EngineSteps`] of `plain` as `{group}/{id}`.
fn bench_engine_step(
    c: &mut Criterion,
    base: &Device,
    batch: usize,
    plain: &Plain,
    (group, id): (&str, &str),
) -> anyhow::Result<()> {
    let mut steps = EngineSteps::new(base, batch, plain)?;
    c.bench_function(&format!("{group}/{id}"), |b| b.iter(|| steps.step()));
    Ok(())
}

/// SGD on [`LOSS_MODEL`] with `losses`, as plain data.
fn loss_plain(losses: &[Value]) -> Plain {
    let (width, depth) = LOSS_MODEL_SIZE;
    Plain {
        model: json!({ "name": LOSS_MODEL, "width": width, "depth": depth }),
        losses: losses.to_vec(),
        ..Plain::named(LOSS_MODEL, BASELINE)
    }
}

/// Steps in a round of the loss-term pairing: a multiple of every default interval (`cka-sr`'s
/// 5), so a round holds whole cycles.
const LOSS_ROUND_STEPS: usize = 60;

/// Per round, the step with `losses` ÷ the step without, measured alternately
/// ([`alternating_ratios`]).
fn paired_with_no_loss(base: &Device, batch: usize, losses: &[Value]) -> anyhow::Result<Vec<f64>> {
    let mut without = EngineSteps::new(base, batch, &loss_plain(&[]))?;
    let mut with = EngineSteps::new(base, batch, &loss_plain(losses))?;
    Ok(alternating_ratios(|| without.round(), || with.round()))
}

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
/// interference slows a few samples or one round of one side (a PyTorch round read 28.6 ms
/// between rounds of 18.3 and 13.8 ms), which moves a mean, and so a ratio of means, by as much
/// as the difference being measured. The same estimator serves both sides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairedBench {
    /// Model.
    pub model: String,
    /// sparselab's engine step, per round.
    pub sparselab: Vec<Estimate>,
    /// PyTorch's step, per round (empty without torch).
    pub pytorch: Vec<crate::reference::ReferenceStep>,
    /// sparselab samples/s (batch / the median over rounds of the round's median step).
    pub sparselab_samples_per_sec: f64,
    /// PyTorch samples/s, if measured (the same estimator).
    pub pytorch_samples_per_sec: Option<f64>,
    /// Per round, sparselab's throughput ÷ PyTorch's (> 1: sparselab is faster).
    pub round_ratios: Vec<f64>,
    /// The median of [`Self::round_ratios`], if PyTorch was measured.
    pub ratio: Option<f64>,
}

/// Paired ratios as `median× (lowest–highest)`.
fn spread(v: &[f64]) -> String {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    format!("{:.2}× ({lo:.2}–{hi:.2})", median(v))
}

/// The median of `v` (the mean of the two middle values for an even count; NaN when empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Per round, `theirs / ours` for the rounds both sides measured (step times: against PyTorch,
/// sparselab's throughput ÷ PyTorch's; against a baseline, the case's step ÷ the baseline's).
fn round_ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    ours.iter().zip(theirs).map(|(o, t)| t / o).collect()
}

/// Measures [`PAIRED_MODELS`] against the reference, interleaved round by round.
fn paired(
    c: &mut Criterion,
    opts: &BenchOptions,
    device: &Device,
    criterion_dir: &Path,
    reference: Option<&crate::reference::Reference>,
) -> anyhow::Result<Vec<PairedBench>> {
    let threads = crate::jobs::cores();
    let mut out = Vec::new();
    for model in PAIRED_MODELS {
        let plain = Plain::named(model, BASELINE);
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

/// Criterion's estimate for the benchmark named `{group}/{id}`: criterion stores it under
/// `{group}_{id}/new/estimates.json` (a `/` in a benchmark name becomes `_`).
fn read_estimate(dir: &Path, group: &str, id: &str) -> anyhow::Result<Estimate> {
    let path = dir
        .join(format!("{group}_{id}"))
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading criterion's estimate {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let ns = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN) * 1e-9;
    Ok(Estimate {
        mean: ns("/mean/point_estimate"),
        ci95: (
            ns("/mean/confidence_interval/lower_bound"),
            ns("/mean/confidence_interval/upper_bound"),
        ),
        median: ns("/median/point_estimate"),
    })
}

struct Setup {
    model: Model,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    device: Device,
}

/// Fashion-MNIST-shaped input.
const INPUT: InputShape = InputShape {
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
};

/// Steps after which an optimiser benchmark starts again from the initial model and a fresh
/// optimiser state, so every method and both forms of its update are timed over the same
/// training steps. Left to run on, the cost of a step drifts with the state (the zeros a prox
/// makes, a reweighting's weights), and a slower benchmark would be timed on an earlier state
/// than a faster one.
const RESTART_EVERY: u64 = 50;

/// What an optimiser benchmark times.
#[derive(Clone, Copy)]
enum Timed {
    /// Forward, backward and update.
    TrainStep,
    /// The update alone.
    Update,
    /// The update alone with every fused form off (`sparselab_core::fused::with_tensor_ops`).
    UpdateAsTensorOps,
}

/// One benchmark case's training steps on the fixed batch of [`setup`], started again from the
/// initial model and a fresh optimiser state every [`RESTART_EVERY`] steps.
struct CaseSteps<'a> {
    base: Device,
    s: Setup,
    name: &'a str,
    regularizer: Option<&'a str>,
    state: Option<(Model, ModuleOptimizer)>,
    steps: u64,
}

impl<'a> CaseSteps<'a> {
    /// Resolves the case once here, so the restarts inside a measurement cannot fail.
    fn new(
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
    fn round(&mut self, timed: Timed) -> f64 {
        self.restart();
        let times: Vec<f64> = (0..RESTART_EVERY)
            .map(|_| self.step(timed).as_secs_f64())
            .collect();
        median(&times)
    }
}

/// Counted rounds of each pairing with a baseline (SGD, the plain step): baseline, case,
/// baseline, case, …
const BASELINE_ROUNDS: usize = 7;

/// Per round, `case()` ÷ `baseline()`, called alternately: one round of each not counted, then
/// [`BASELINE_ROUNDS`] counted rounds, the baseline first.
fn alternating_ratios(
    mut baseline: impl FnMut() -> f64,
    mut case: impl FnMut() -> f64,
) -> Vec<f64> {
    baseline();
    case();
    let (mut baseline_times, mut case_times) = (Vec::new(), Vec::new());
    for _ in 0..BASELINE_ROUNDS {
        baseline_times.push(baseline());
        case_times.push(case());
    }
    round_ratios(&baseline_times, &case_times)
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
/// as the PyTorch rows and for the same reason: the criterion means of two cases are taken minutes apart, and drift on a shared machine moved
/// such a ratio by ±20 % (ProxSGD without a regulariser, whose update is SGD's, read 1.16×,
/// 1.39× and 0.97× of SGD's update in three benches).
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

fn setup(base: &Device, batch: usize) -> anyhow::Result<Setup> {
    let device = base.clone().autodiff();
    device.seed(0);
    let (_, parts) = resolve(&Plain::named(MODEL, BASELINE), "")?;
    let model = parts.model.build(INPUT, &device)?;
    let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 10).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    Ok(Setup {
        model,
        x,
        y,
        device,
    })
}

fn grads(s: &Setup, model: &Model) -> GradientsParams {
    let loss_fn = CrossEntropyLossConfig::new().init(&s.device);
    let loss = loss_fn.forward(model.forward(s.x.clone(), false).logits, s.y.clone());
    GradientsParams::from_grads(loss.backward(), model)
}

/// The method of one benchmark case, as plain data.
fn plain(name: &str, regularizer: Option<&str>) -> Plain {
    Plain {
        regularizer: regularizer.map_or(Value::Null, |r| json!({ "name": r })),
        ..Plain::named(MODEL, name)
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
    let (_, parts) = resolve(&plain(name, regularizer), "")?;
    Ok(parts
        .optimizer
        .build(&model.describe(), parts.regularizer)?
        .optim)
}

fn case_id(name: &str, regularizer: Option<&str>) -> String {
    regularizer.map_or_else(|| name.to_string(), |r| format!("{name}+{r}"))
}

/// Runs the benchmarks and writes `bench.json` and `bench.md` under `opts.out`.
pub fn run(opts: &BenchOptions) -> anyhow::Result<Vec<PathBuf>> {
    // Measured the way runs train: inside the compute pool ([`crate::jobs::on_all_cores`]).
    crate::jobs::on_all_cores(|| measure(opts))?
}

/// [`run`]'s measurements, on the calling thread.
fn measure(opts: &BenchOptions) -> anyhow::Result<Vec<PathBuf>> {
    let selected = select(opts.device).map_err(anyhow::Error::msg)?;
    if let Some(note) = &selected.note {
        eprintln!("device: {note}");
    }
    let criterion_dir = opts.out.join("criterion");
    std::fs::create_dir_all(&criterion_dir)?;
    let measurement = Duration::from_secs_f64(opts.seconds.max(0.5));
    let mut c = Criterion::default()
        .output_directory(&criterion_dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .sample_size(20)
        .without_plots();
    let reference = crate::reference::Reference::find(&opts.reference_script);
    if let Err(why) = &reference {
        eprintln!("PyTorch reference skipped: {why}");
    }
    let paired_rows = paired(
        &mut c,
        opts,
        &selected.device,
        &criterion_dir,
        reference.as_ref().ok(),
    )?;
    let cases = cases();
    let mut sgd = CaseSteps::new(&selected.device, opts.batch, BASELINE, None)?;
    let mut vs_sgd = Vec::new();
    for (name, reg) in &cases {
        let id = case_id(name, reg.as_deref());
        let mut case = CaseSteps::new(&selected.device, opts.batch, name, reg.as_deref())?;
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
    // The powers run on the host, so they bound LpSGD's step on flex only.
    let mut powers = match selected.backend {
        "flex" => Some(PowerWork::new(&setup(&selected.device, opts.batch)?.model)?),
        _ => None,
    };
    if let Some(work) = &mut powers {
        c.bench_function("bound/lpsgd_powers", |b| b.iter(|| work.run()));
    }
    let mut loss_pairs = Vec::new();
    for (case, losses) in loss_cases() {
        bench_engine_step(
            &mut c,
            &selected.device,
            opts.batch,
            &loss_plain(&losses),
            ("loss_step", case),
        )?;
        loss_pairs.push(paired_with_no_loss(&selected.device, opts.batch, &losses)?);
    }
    let pruned_rows = pruned_step::measure(&selected.device, opts.batch)?;
    let topologies = sparselab_topology::registry().names();
    for name in &topologies {
        let s = setup(&selected.device, opts.batch)?;
        let (_, parts) = resolve(
            &Plain {
                topology: json!({ "name": name }),
                ..Plain::named(MODEL, BASELINE)
            },
            "",
        )?;
        let mut topology = parts.topology.context("a registered topology resolves")?;
        let table = s.model.describe();
        let masked: Vec<sparselab_core::ParamInfo> = table
            .iter()
            .filter(|p| topology.applies_to(p))
            .cloned()
            .collect();
        let ids: Vec<_> = masked.iter().map(|p| p.id).collect();
        let values = sparselab_core::param::host_values(&s.model, &ids);
        let g = sparselab_core::param::host_grads(&s.model, &grads(&s, &s.model), &ids);
        let weights: Vec<sparselab_topology::HostWeight<'_>> = masked
            .iter()
            .zip(&values)
            .map(|(info, v)| sparselab_topology::HostWeight { info, values: v })
            .collect();
        let ctx = sparselab_topology::TopologyContext {
            total_steps: 10_000,
            steps_per_epoch: 430,
            seed: 0,
        };
        topology.init(&ctx, &weights);
        c.bench_function(&format!("topology_update/{name}"), |b| {
            b.iter(|| topology.update(4_000, &weights, Some(&g)))
        });
    }
    let mut rows = Vec::new();
    for ((name, reg), vs_sgd) in cases.iter().zip(vs_sgd) {
        let id = case_id(name, reg.as_deref());
        let train_step = read_estimate(&criterion_dir, "train_step", &id)?;
        let optimizer_step = read_estimate(&criterion_dir, "optimizer_step", &id)?;
        let tensor_op_step = read_estimate(&criterion_dir, "optimizer_step_ops", &id)?;
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
    let sgd = rows
        .iter()
        .find(|r| r.optimizer == BASELINE && r.regularizer.is_none())
        .ok_or_else(|| anyhow::anyhow!("the sgd baseline is not registered"))?;
    let sgd_train = sgd.train_step.mean;
    let lpsgd = sparselab_optimizers::lpsgd::LpSgd::NAME;
    let bound = match (&powers, rows.iter().find(|r| r.optimizer == lpsgd)) {
        (Some(work), Some(row)) => Some(LpSgdBound::new(
            work,
            read_estimate(&criterion_dir, "bound", "lpsgd_powers")?,
            sgd_train,
            sgd.optimizer_step.mean,
            row.train_ratio_vs_sgd,
        )),
        _ => None,
    };
    let mut topology_rows = Vec::new();
    for name in &topologies {
        let update = read_estimate(&criterion_dir, "topology_update", name)?;
        let every = sparselab_topology::registry()
            .get(name)
            .ok()
            .and_then(|e| e.defaults().get("every")?.as_u64());
        topology_rows.push(TopologyBench {
            topology: name.to_string(),
            amortised_vs_sgd_step: every.map(|e| update.mean / e as f64 / sgd_train),
            update,
            every,
        });
    }
    let mut loss_rows = Vec::new();
    for ((case, losses), rounds) in loss_cases().into_iter().zip(loss_pairs) {
        let train_step = read_estimate(&criterion_dir, "loss_step", case)?;
        loss_rows.push(LossBench {
            case: case.to_string(),
            losses,
            train_step,
            ratio_vs_none: median(&rounds),
            rounds_vs_none: rounds,
        });
    }
    let env = Env::capture(&selected.description, selected.backend);
    let summary = json!({
        "model": MODEL,
        "input": [1, 28, 28],
        "batch": opts.batch,
        "env": env,
        "pytorch": reference.as_ref().ok().map(|r| json!({ "torch": r.torch, "python": r.python_version })),
        "pytorch_skipped": reference.as_ref().err(),
        "paired": paired_rows,
        "optimizers": rows,
        "lpsgd_bound": bound,
        "topologies": topology_rows,
        "loss_terms": loss_rows,
        "pruned_steps": pruned_rows,
    });
    std::fs::create_dir_all(&opts.out)?;
    let json_path = opts.out.join("bench.json");
    write_atomic(
        &json_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let mut md = paired_markdown(opts.batch, &env, &reference, &paired_rows);
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
        opts.batch, BASELINE_ROUNDS, RESTART_EVERY,
    ));
    for r in &rows {
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
    if let Some(bound) = &bound {
        md.push_str(&bound.markdown(STEP_GOAL_VS_SGD));
    }
    md.push_str(
        "\n## Topology updates\n\nHost side, LeNet-300-100 weights and dense gradient): one update, and \
         amortised over the default update interval relative to SGD's train step.\n\n\
         | topology | update (ms) | every (steps) | amortised per step / SGD's train step |\n|---|---|---|---|\n",
    );
    for t in &topology_rows {
        md.push_str(&format!(
            "| {} | {:.2} [{:.2}, {:.2}] | {} | {} |\n",
            t.topology,
            t.update.mean * 1e3,
            t.update.ci95.0 * 1e3,
            t.update.ci95.1 * 1e3,
            t.every.map_or("–".into(), |e| e.to_string()),
            t.amortised_vs_sgd_step
                .map_or("–".into(), |r| format!("{:.3}×", r))
        ));
    }
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
        LOSS_ROUND_STEPS,
    ));
    for r in &loss_rows {
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
    md.push_str(&pruned_step::markdown(
        &pruned_rows,
        opts.batch,
        BASELINE_ROUNDS,
        LOSS_ROUND_STEPS,
    ));
    let md_path = opts.out.join("bench.md");
    write_atomic(&md_path, md.as_bytes())?;
    Ok(vec![json_path, md_path])
}

/// The head of `bench.md`: machine and versions, then sparselab and PyTorch side by side.
fn paired_markdown(
    batch: usize,
    env: &Env,
    reference: &Result<crate::reference::Reference, String>,
    rows: &[PairedBench],
) -> String {
    let mut md = format!(
        "# Benchmarks\n\n{}\n\n{}\n\n## sparselab vs PyTorch: dense training step, batch {batch}\n\n\
         The engine's whole step (`Trainee::step`: forward, cross-entropy, backward, momentum SGD, \
         loss read back) against `xtask/reference/pytorch_reference.py step` (same model, batch, \
         input shape and optimiser, the same number of threads), measured alternately: \
         sparselab, PyTorch, sparselab, PyTorch, … Each round's step is the median over its \
         samples; a round's ratio is PyTorch's step ÷ sparselab's in that round (> 1: sparselab is \
         faster), and the ratio is the median over rounds (samples/s: batch ÷ the median step).\n\n\
         | model | sparselab step (ms), per round | PyTorch step (ms), per round | ratio per round | sparselab samples/s | PyTorch samples/s | ratio (median) |\n|---|---|---|---|---|---|---|\n",
        env.provenance(),
        match reference {
            Ok(r) => format!(
                "PyTorch {} on Python {} (`{}`).",
                r.torch,
                r.python_version,
                r.python.display()
            ),
            Err(why) => format!("PyTorch not measured: {why}."),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_estimate` finds what criterion itself wrote for a `group/id` benchmark name.
    #[test]
    fn reads_the_estimate_criterion_writes() {
        let dir = std::env::temp_dir().join(format!("sparselab-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Criterion::default()
            .output_directory(&dir)
            .warm_up_time(Duration::from_millis(10))
            .measurement_time(Duration::from_millis(50))
            .sample_size(10)
            .without_plots();
        c.bench_function("train_step/sgd+l1", |b| {
            b.iter(|| std::hint::black_box((0..100u64).sum::<u64>()))
        });
        let e = read_estimate(&dir, "train_step", "sgd+l1").expect("estimate");
        assert!(e.mean > 0.0 && e.mean.is_finite(), "{e:?}");
        assert!(e.ci95.0 <= e.mean && e.mean <= e.ci95.1, "{e:?}");
        assert!(e.median > 0.0 && e.median.is_finite(), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The median: the middle value for an odd count, the mean of the two middle values for an
    /// even one, whatever the order; NaN for none.
    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    /// The baseline and the case alternate, baseline first; the first call of each is not
    /// counted, and each counted ratio is the case's value over the baseline's in its round.
    #[test]
    fn alternating_ratios_pair_each_round_after_a_warm_up() {
        let calls = std::cell::RefCell::new(Vec::new());
        let mut n = 0.0;
        let ratios = alternating_ratios(
            || {
                n += 1.0;
                calls.borrow_mut().push('b');
                n
            },
            || {
                calls.borrow_mut().push('c');
                10.0 * calls.borrow().len() as f64
            },
        );
        let order: String = calls.borrow().iter().collect();
        assert_eq!(order, "bc".repeat(BASELINE_ROUNDS + 1));
        // Round r (1-based, after the warm-up): baseline r + 1, case 10·(2r + 2).
        let expected: Vec<f64> = (1..=BASELINE_ROUNDS)
            .map(|r| 10.0 * (2 * r + 2) as f64 / (r + 1) as f64)
            .collect();
        assert_eq!(ratios, expected);
    }

    /// A round's ratio is PyTorch's step over sparselab's in the same round, and one slowed
    /// round of either side does not move the median ratio.
    #[test]
    fn one_slowed_round_does_not_move_the_paired_ratio() {
        let ours = [2.0, 2.0, 2.0, 2.0, 2.0];
        let theirs = [3.0, 3.0, 3.0, 3.0, 3.0];
        assert_eq!(round_ratios(&ours, &theirs), vec![1.5; 5]);
        let slowed_theirs = [3.0, 3.0, 9.0, 3.0, 3.0];
        let slowed_ours = [2.0, 6.0, 2.0, 2.0, 2.0];
        assert_eq!(median(&round_ratios(&ours, &slowed_theirs)), 1.5);
        assert_eq!(median(&round_ratios(&slowed_ours, &theirs)), 1.5);
        // Rounds PyTorch did not measure are left out.
        assert_eq!(round_ratios(&ours, &theirs[..2]).len(), 2);
    }
}
