//! The benchmarks' fixed workload: the benchmarked model on one fixed batch, and the engine's
//! whole training step on it.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::Criterion;
use serde_json::json;
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_optimizers::SparseOptimizer;
use sparselab_runner::experiment::RunConfig;
use sparselab_runner::resolve::{RunTables, resolve};
use sparselab_runner::trainee::Trainee;
use std::time::Instant;

/// The benchmarked model.
pub const MODEL: &str = "mlp-300-100";

/// The optimiser every ratio is relative to (plain momentum SGD).
pub const BASELINE: &str = sparselab_optimizers::sgd::Sgd::NAME;

/// Steps in a round of the engine-step pairings: a multiple of every default loss-term interval
/// (`cka-sr`'s 5), so a round holds whole cycles.
pub const ROUND_STEPS: usize = 60;

/// The benchmarked model at its initial weights and one fixed batch of Fashion-MNIST-shaped
/// inputs (standard normal) with labels `i mod 10`, on the autodiff device.
pub struct Setup {
    pub model: Model,
    pub x: Tensor<4>,
    pub y: Tensor<1, Int>,
    pub device: Device,
}

/// Fashion-MNIST-shaped input.
pub const INPUT: InputShape = InputShape {
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
};

/// [`Setup`] on `base` at batch `batch` (the same weights and batch on every call).
pub fn setup(base: &Device, batch: usize) -> anyhow::Result<Setup> {
    let device = base.clone().autodiff();
    device.seed(0);
    let methods = resolve(&RunTables::named(MODEL, BASELINE), "")?.methods;
    let model = methods.model.build(INPUT, &device)?;
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

/// The gradients of the cross-entropy of `model` on the fixed batch.
pub fn grads(s: &Setup, model: &Model) -> GradientsParams {
    let loss_fn = CrossEntropyLossConfig::new().init(&s.device);
    let loss = loss_fn.forward(model.forward(s.x.clone(), false).logits, s.y.clone());
    GradientsParams::from_grads(loss.backward(), model)
}

/// The engine's whole training step (`Trainee::step`) of one method on one fixed batch:
/// successive calls are successive steps, each read back to the host.
pub struct EngineSteps {
    pub trainee: Trainee,
    data: sparselab_data::Batch,
    step: usize,
}

impl EngineSteps {
    pub fn new(base: &Device, batch: usize, plain: &RunTables) -> anyhow::Result<Self> {
        let ctx = sparselab_topology::TopologyContext {
            total_steps: 10_000,
            steps_per_epoch: 430,
            seed: 0,
        };
        Self::in_context(base, batch, plain, ctx)
    }

    /// Steps of `plain` whose topology schedules its updates over `ctx.total_steps`.
    pub fn in_context(
        base: &Device,
        batch: usize,
        plain: &RunTables,
        ctx: sparselab_topology::TopologyContext,
    ) -> anyhow::Result<Self> {
        let resolved = resolve(
            &RunTables {
                train: json!({ "batch": batch }),
                ..plain.clone()
            },
            "",
        )?;
        let config = RunConfig {
            data: sparselab_data::DataConfig::default(),
            train: resolved.train,
            method: resolved.method,
            seed: 0,
        };
        let trainee = Trainee::new(&config, INPUT, base, ctx)?;
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
    pub fn step(&mut self) -> f64 {
        self.step += 1;
        let (loss, _) = self.trainee.step(self.data.clone(), 0.01, self.step);
        loss.into_scalar::<f64>()
    }

    /// The **mean** step over [`ROUND_STEPS`] steps (seconds): a loss term due every `b`
    /// steps is averaged over whole cycles, where a median would leave its steps out.
    pub fn round(&mut self) -> f64 {
        let t = Instant::now();
        for _ in 0..ROUND_STEPS {
            std::hint::black_box(self.step());
        }
        t.elapsed().as_secs_f64() / ROUND_STEPS as f64
    }
}

/// Times [`EngineSteps`] of `plain` as `{group}/{id}`.
pub fn bench_engine_step(
    c: &mut Criterion,
    base: &Device,
    batch: usize,
    plain: &RunTables,
    (group, id): (&str, &str),
) -> anyhow::Result<()> {
    let mut steps = EngineSteps::new(base, batch, plain)?;
    c.bench_function(&format!("{group}/{id}"), |b| b.iter(|| steps.step()));
    Ok(())
}
