//! Training one run.
//!
//! One optimiser step (the data flow ARCHITECTURE.md describes):
//!
//! 1. forward the batch (feature taps only when a loss term needs them);
//! 2. task loss (cross-entropy) + regularizer loss terms → backward;
//! 3. zero the gradients of masked weights;
//! 4. optimiser step at the scheduled learning rate (proximal optimisers apply their prox here);
//! 5. topology update when due (pruning/regrowth on host copies of weights and, if asked, of the
//!    dense gradient of this batch);
//! 6. re-apply masks, so a pruned weight is exactly `0.0`.
//!
//! After every epoch: evaluate on the validation and test splits, measure sparsity, compression,
//! speedup and Hoyer sparsity, and hand the records to the observer (which persists them). A run
//! whose training loss becomes NaN or infinite stops and is recorded as diverged.

use crate::record::{EpochRecord, FinalRecord, Status};
use crate::spec::PlannedRun;
use anyhow::Context;
use burn::module::{Module, ParamId};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use sparselab_core::param::{device_weights, host_grads, host_values};
use sparselab_core::{ParamInfo, ParamTable};
use sparselab_data::loader::Order;
use sparselab_data::{Batch, Dataset, Split, batches};
use sparselab_metrics::accuracy::{top_k_correct, top_k_hits};
use sparselab_metrics::group::{churn, group_report, identification_epoch, input_groups};
use sparselab_metrics::hoyer::network_hoyer;
use sparselab_metrics::sparsity::report_table;
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_regularizers::Regularizer;
use sparselab_topology::{DeviceMasks, HostWeight, Topology, TopologyContext};
use std::sync::Arc;
use std::time::Instant;

/// Batch size used for evaluation (does not affect results beyond float summation order).
const EVAL_BATCH: usize = 1000;
/// Steps between progress reports (each reads the loss back from the device).
const REPORT_EVERY: usize = 20;

/// Receives progress while a run trains.
pub trait Observer {
    /// Called every few steps with the current batch loss.
    fn step(&mut self, epoch: usize, step_in_epoch: usize, steps_per_epoch: usize, loss: f64);
    /// Called after every epoch with all records so far; an error stops the run.
    fn epoch(&mut self, epochs: &[EpochRecord]) -> anyhow::Result<()>;
}

/// Evaluation of one split: `(mean loss, top-1 accuracy, top-5 accuracy if ≥ 100 classes)`.
fn evaluate(
    model: &Model,
    split: &Split,
    data: &Dataset,
    device: &Device,
) -> (f64, f64, Option<f64>) {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (mut loss, mut top1, mut top5) = (0.0, 0usize, 0usize);
    for b in batches(split, data.shape, EVAL_BATCH, Order::Sequential, device) {
        let logits = model.forward(b.images, false).logits;
        loss += loss_fn
            .forward(logits.clone(), b.labels.clone())
            .into_scalar::<f64>()
            * b.len as f64;
        top1 += top_k_correct(logits.clone(), b.labels.clone(), 1);
        if data.classes >= 100 {
            top5 += top_k_correct(logits, b.labels, 5);
        }
    }
    let n = split.len().max(1) as f64;
    (
        loss / n,
        top1 as f64 / n,
        (data.classes >= 100).then(|| top5 as f64 / n),
    )
}

/// Host views of the masked parameters for a topology.
fn as_host<'a>(infos: &'a [ParamInfo], values: &'a [Vec<f32>]) -> Vec<HostWeight<'a>> {
    infos
        .iter()
        .zip(values)
        .map(|(info, v)| HostWeight { info, values: v })
        .collect()
}

/// `λ·ψ(w)` summed over the parameters the regularizer acts on.
fn penalty(model: &Model, table: &ParamTable, reg: &dyn Regularizer) -> f64 {
    let ids: Vec<ParamId> = table
        .iter()
        .filter(|p| reg.applies_to(p))
        .map(|p| p.id)
        .collect();
    device_weights(model, &ids)
        .iter()
        .map(|w| reg.strength() * reg.penalty(w))
        .sum()
}

/// The metrics of the model at the end of an epoch (everything but timing and losses).
/// Host copies of every trainable parameter, in table order.
fn trainable_values<'a>(
    model: &Model,
    table: &'a ParamTable,
) -> (Vec<&'a ParamInfo>, Vec<Vec<f32>>) {
    let params: Vec<&ParamInfo> = table.trainable().collect();
    let values = host_values(model, &params.iter().map(|p| p.id).collect::<Vec<_>>());
    (params, values)
}

/// The zero pattern of every input group (SPEC §1.4), in table order.
fn group_pattern(model: &Model, table: &ParamTable) -> Vec<bool> {
    let (params, values) = trainable_values(model, table);
    group_report(params.into_iter().zip(values.iter().map(Vec::as_slice))).pattern
}

/// Fills the weight metrics of `record`, with the structure churn against the previous epoch's
/// group pattern `previous`; returns this epoch's pattern.
fn weight_metrics(
    model: &Model,
    table: &ParamTable,
    previous: &[bool],
    relevant: Option<&[bool]>,
    record: &mut EpochRecord,
) -> Vec<bool> {
    let (params, values) = trainable_values(model, table);
    let report = report_table(table, &values);
    record.weight_sparsity = report.weight_sparsity;
    record.param_sparsity = report.param_sparsity;
    record.compression = report.compression;
    record.speedup = report.speedup;
    record.layer_sparsity = report
        .layers
        .iter()
        .map(|l| (l.path.clone(), l.sparsity))
        .collect();
    let pairs = || params.iter().copied().zip(values.iter().map(Vec::as_slice));
    record.hoyer = network_hoyer(pairs());
    let groups = group_report(pairs());
    record.group_sparsity = Some(groups.sparsity);
    record.group_sparsity_weighted = Some(groups.weighted_sparsity);
    record.layer_group_sparsity = groups.layers.into_iter().collect();
    record.churn = Some(churn(previous, &groups.pattern));
    // The first weight tensor's input groups are the input features.
    if let (Some(relevant), Some((info, values))) = (relevant, pairs().find(|(i, _)| i.is_weight()))
    {
        let used: Vec<bool> = input_groups(info, values)
            .iter()
            .map(|(_, zero)| !zero)
            .collect();
        if used.len() == relevant.len() {
            record.support_error = Some(used.iter().zip(relevant).filter(|(u, r)| u != r).count());
        }
    }
    groups.pattern
}

/// A run's model and everything that updates it.
struct Trainee {
    model: Model,
    table: ParamTable,
    optim: ModuleOptimizer,
    regularizer: Option<Arc<dyn Regularizer>>,
    topology: Option<Box<dyn Topology>>,
    /// The parameters the topology masks.
    masked: Vec<ParamInfo>,
    masks: DeviceMasks,
    loss_fn: CrossEntropyLoss,
    /// The training device (with autodiff).
    device: Device,
}

impl Trainee {
    /// Builds the model (seeded), optimiser, regularizer and topology of `run`, and applies the
    /// topology's initial masks.
    fn new(
        run: &PlannedRun,
        input: InputShape,
        base: &Device,
        ctx: TopologyContext,
    ) -> anyhow::Result<Self> {
        let cfg = &run.config;
        let built = |e: sparselab_core::ConfigError| anyhow::anyhow!("run {}: {e}", run.id);
        let device = base.clone().autodiff();
        device.seed(cfg.seed);
        let model = sparselab_models::registry()
            .build(&cfg.model.table())
            .map_err(built)?
            .value
            .build(input, &device)
            .map_err(built)?;
        let table = model.describe();
        let regularizer: Option<Arc<dyn Regularizer>> = match &cfg.regularizer {
            Some(c) => Some(Arc::from(
                sparselab_regularizers::registry()
                    .build(&c.table())
                    .map_err(built)?
                    .value,
            )),
            None => None,
        };
        let optim = sparselab_optimizers::registry()
            .build(&cfg.optimizer.table())
            .map_err(built)?
            .value
            .build(&table, regularizer.clone());
        let topology: Option<Box<dyn Topology>> = match &cfg.topology {
            Some(c) => Some(
                sparselab_topology::registry()
                    .build(&c.table())
                    .map_err(built)?
                    .value,
            ),
            None => None,
        };
        let masked: Vec<ParamInfo> = match &topology {
            Some(t) => table.iter().filter(|p| t.applies_to(p)).cloned().collect(),
            None => Vec::new(),
        };
        let mut trainee = Self {
            model,
            table,
            optim,
            regularizer,
            topology,
            masked,
            masks: DeviceMasks::default(),
            loss_fn: CrossEntropyLossConfig::new().init(&device),
            device,
        };
        let values = trainee.masked_values();
        if let Some(t) = trainee.topology.as_mut()
            && let Some(m) = t.init(&ctx, &as_host(&trainee.masked, &values))
        {
            trainee.masks.set(&m, &trainee.device);
            trainee.model = trainee.masks.apply(trainee.model.clone());
        }
        Ok(trainee)
    }

    /// Ids of the masked parameters.
    fn masked_ids(&self) -> Vec<ParamId> {
        self.masked.iter().map(|p| p.id).collect()
    }

    /// Host copies of the masked parameters.
    fn masked_values(&self) -> Vec<Vec<f32>> {
        host_values(&self.model, &self.masked_ids())
    }

    /// One optimiser step (the six stages of the module docs) at learning rate `lr`; returns
    /// the batch's summed loss and number of correct predictions, left on the device.
    fn step(&mut self, batch: Batch, lr: f64, step: usize) -> (Tensor<1>, Tensor<1, Int>) {
        let logits = self.model.forward(batch.images, false).logits;
        let loss = self.loss_fn.forward(logits.clone(), batch.labels.clone());
        let summed = loss.clone().inner().mul_scalar(batch.len as f64);
        let hits = top_k_hits(logits.inner(), batch.labels, 1);
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let due = self.topology.as_ref().is_some_and(|t| t.due(step));
        let dense_grads = (due && self.topology.as_ref().is_some_and(|t| t.needs_dense_grad()))
            .then(|| host_grads(&self.model, &grads, &self.masked_ids()));
        self.masks.mask_grads(&self.model, &mut grads);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        if due {
            let values = self.masked_values();
            if let Some(t) = self.topology.as_mut()
                && let Some(m) = t.update(
                    step,
                    &as_host(&self.masked, &values),
                    dense_grads.as_deref(),
                )
            {
                self.masks.set(&m, &self.device);
            }
        }
        self.model = self.masks.apply(self.model.clone());
        (summed, hits)
    }
}

/// Trains `run` on `data` on device `base` (autodiff is added here); returns the outcome and
/// the per-epoch records.
pub fn train(
    run: &PlannedRun,
    data: &Dataset,
    base: &Device,
    observer: &mut dyn Observer,
) -> anyhow::Result<(FinalRecord, Vec<EpochRecord>)> {
    let started = Instant::now();
    let cfg = &run.config;
    let input = InputShape {
        channels: data.shape[0],
        height: data.shape[1],
        width: data.shape[2],
        classes: data.classes,
    };
    let steps_per_epoch = data.train.len().div_ceil(cfg.train.batch);
    let total_steps = steps_per_epoch * cfg.train.epochs;
    let ctx = TopologyContext {
        total_steps,
        steps_per_epoch,
        seed: cfg.seed,
    };
    let mut trainee = Trainee::new(run, input, base, ctx)?;
    let mut pattern = group_pattern(&trainee.model, &trainee.table);
    let mut epochs: Vec<EpochRecord> = Vec::new();
    let mut step = 0usize;
    let mut train_seconds = 0.0;
    let mut diverged: Option<String> = None;
    'epochs: for epoch in 0..cfg.train.epochs {
        let t0 = Instant::now();
        let mut loss_sum = Tensor::<1>::zeros([1], base);
        let mut hits = Tensor::<1, Int>::zeros([1], base);
        let order = Order::Shuffled {
            seed: cfg.seed,
            epoch,
            augment: data.augment,
        };
        let mut lr = cfg.train.lr;
        let device = trainee.device.clone();
        for (i, batch) in
            batches(&data.train, data.shape, cfg.train.batch, order, &device).enumerate()
        {
            step += 1;
            lr = cfg.train.lr_at(step, steps_per_epoch, total_steps);
            let (loss, correct) = trainee.step(batch, lr, step);
            loss_sum = loss_sum + loss;
            hits = hits + correct;
            if (i + 1) % REPORT_EVERY == 0 || i + 1 == steps_per_epoch {
                let seen = ((i + 1) * cfg.train.batch).min(data.train.len());
                let value = loss_sum.clone().into_scalar::<f64>() / seen as f64;
                if !value.is_finite() {
                    diverged = Some(format!(
                        "training loss became {value} at step {step} (epoch {})",
                        epoch + 1
                    ));
                    train_seconds += t0.elapsed().as_secs_f64();
                    break 'epochs;
                }
                observer.step(epoch + 1, i + 1, steps_per_epoch, value);
            }
        }
        let epoch_seconds = t0.elapsed().as_secs_f64();
        train_seconds += epoch_seconds;
        let n = data.train.len() as f64;
        let mut record = EpochRecord {
            epoch: epoch + 1,
            step,
            lr,
            train_loss: loss_sum.into_scalar::<f64>() / n,
            train_accuracy: hits.into_scalar::<i64>() as f64 / n,
            epoch_seconds,
            samples_per_sec: n / epoch_seconds.max(1e-9),
            ..EpochRecord::default()
        };
        let valid = trainee.model.valid();
        if !data.val.is_empty() {
            let (l, a, _) = evaluate(&valid, &data.val, data, base);
            (record.val_loss, record.val_accuracy) = (Some(l), Some(a));
        }
        (record.test_loss, record.test_accuracy, record.test_top5) =
            evaluate(&valid, &data.test, data, base);
        record.penalty = trainee
            .regularizer
            .as_deref()
            .map(|r| penalty(&trainee.model, &trainee.table, r));
        pattern = weight_metrics(
            &trainee.model,
            &trainee.table,
            &pattern,
            data.relevant_features.as_deref(),
            &mut record,
        );
        epochs.push(record);
        observer.epoch(&epochs).context("recording an epoch")?;
    }

    let best = epochs
        .iter()
        .filter_map(|e| e.val_accuracy.map(|a| (a, e)))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.epoch.cmp(&a.1.epoch)))
        .map(|(_, e)| e);
    let trained_samples =
        (step.min(total_steps) as f64 / steps_per_epoch as f64) * data.train.len() as f64;
    let churn: Vec<usize> = epochs.iter().map(|e| e.churn.unwrap_or(0)).collect();
    let outcome = FinalRecord {
        status: if diverged.is_some() {
            Status::Diverged
        } else {
            Status::Finished
        },
        epochs: epochs.len(),
        last: epochs.last().cloned(),
        best_val_epoch: best.map(|e| e.epoch),
        test_accuracy_at_best_val: best.map(|e| e.test_accuracy),
        identification_epoch: identification_epoch(&churn).filter(|_| !epochs.is_empty()),
        train_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        samples_per_sec: trained_samples / train_seconds.max(1e-9),
        note: diverged,
    };
    Ok((outcome, epochs))
}
