//! Training one run.
//!
//! One optimiser step (the data flow ARCHITECTURE.md describes):
//!
//! 1. forward the batch through the masked network `w ⊙ m` (block features only on steps where
//!    a loss term is due);
//! 2. task loss (cross-entropy) + the due loss terms → backward; if the topology is due and
//!    regrows by gradient, copy the dense gradient of the masked weights to the host;
//! 3. zero the gradients of masked weights;
//! 4. reveal latent values (topologies that keep them), optimiser step at the scheduled learning
//!    rate (proximal optimisers apply their prox here), hide again: the model holds `w ⊙ m`;
//! 5. topology update when due, on host copies of `w ⊙ m` (never values an optimiser revived
//!    under the mask); entries it regrows, or zeroes for good, get their optimiser state reset.
//!
//! After every epoch: evaluate on the validation and test splits, measure sparsity, compression,
//! speedup, Hoyer sparsity and the mean inter-layer CKA of each stage, and hand the records to
//! the observer (which persists them). A run whose training loss becomes NaN or infinite stops
//! and is recorded as diverged.

use crate::experiment::{PlannedRun, RunConfig};
use crate::record::{EpochRecord, FinalRecord, SphereLayer, Status, identification_from};
use crate::resolve::resolve;
use crate::similarity::{mean_cka, stage_cka};
use crate::sphere_report::sphere_report;
use anyhow::Context;
use burn::module::{Module, ParamId};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use sparselab_core::param::{device_weights, host_grads, host_values};
use sparselab_core::{ParamInfo, ParamTable};
use sparselab_data::loader::Order;
use sparselab_data::{Batch, Dataset, Split, batches};
use sparselab_losses::LossTerm;
use sparselab_metrics::accuracy::{top_k_correct, top_k_hits};
use sparselab_metrics::group::{churn, group_report, input_groups};
use sparselab_metrics::hoyer::{layer_hoyer, weighted_hoyer};
use sparselab_metrics::magnitude::MagnitudeHistogram;
use sparselab_metrics::sparsity::report_table;
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_optimizers::StateResets;
use sparselab_optimizers::state_values::{StateTensor, state_tensors};
use sparselab_regularizers::Regularizer;
use sparselab_topology::{DeviceMasks, HostWeight, Mask, Topology, TopologyContext};
use std::collections::BTreeMap;
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

/// Magnitudes of every weight-tensor entry.
fn weight_histogram(model: &Model, table: &ParamTable) -> MagnitudeHistogram {
    let ids: Vec<ParamId> = table.weights().map(|p| p.id).collect();
    let values = host_values(model, &ids);
    MagnitudeHistogram::of(values.iter().map(Vec::as_slice))
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
    let layer_hoyers: Vec<(&ParamInfo, f64, usize)> = pairs()
        .filter(|(info, _)| info.is_weight())
        .map(|(info, v)| (info, layer_hoyer(info, v), v.len()))
        .collect();
    record.hoyer = weighted_hoyer(layer_hoyers.iter().map(|&(_, h, n)| (h, n)));
    record.layer_hoyer = layer_hoyers
        .iter()
        .map(|&(info, h, _)| (info.path.clone(), h))
        .collect();
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

/// A running sum on the device (no host sync per step).
#[derive(Default)]
struct DeviceSum {
    total: Option<Tensor<1>>,
    count: usize,
}

impl DeviceSum {
    fn add(&mut self, v: Tensor<1>) {
        self.total = Some(match self.total.take() {
            Some(t) => t + v,
            None => v,
        });
        self.count += 1;
    }

    /// The mean so far (`None` if nothing was added); starts a new sum.
    fn take_mean(&mut self) -> Option<f64> {
        let mean = self
            .total
            .take()
            .map(|t| t.into_scalar::<f64>() / self.count.max(1) as f64);
        self.count = 0;
        mean
    }
}

/// Serialises model initialisation: burn's CPU backend draws initial weights from one global
/// generator that `Device::seed` resets, so concurrent runs ([`crate::jobs`]) take turns from
/// seeding to the last initial weight, and each draws exactly the stream a lone run draws.
static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A run's model and everything that updates it: the live parts of one [`RunConfig`].
pub struct Trainee {
    /// The model, holding `w ⊙ m`; taken by value only inside [`Trainee::step`] and
    /// [`Trainee::set_masks`] (see [`Trainee::update_model`]).
    model: Option<Model>,
    table: ParamTable,
    optim: ModuleOptimizer,
    resets: StateResets,
    regularizer: Option<Arc<dyn Regularizer>>,
    topology: Option<Box<dyn Topology>>,
    /// The parameters the topology masks.
    masked: Vec<ParamInfo>,
    masks: DeviceMasks,
    losses: Vec<Box<dyn LossTerm>>,
    /// The Lp-sphere exponent of every parameter (table order; `None`: unconstrained).
    spheres: Vec<Option<f64>>,
    /// `(step, sparsity of the masked tensors)` after each topology update, since the last
    /// epoch record.
    trace: Vec<(usize, f64)>,
    /// Each loss term's values over the steps it was due, since the last epoch record.
    loss_values: Vec<DeviceSum>,
    loss_fn: CrossEntropyLoss,
    /// The training device (with autodiff).
    device: Device,
}

impl Trainee {
    /// Builds the model (seeded), optimiser, regularizer, topology and loss terms of `config`
    /// (through [`resolve`], which holds every rule experiment loading checks), and applies the
    /// topology's initial masks.
    pub fn new(
        config: &RunConfig,
        input: InputShape,
        base: &Device,
        ctx: TopologyContext,
    ) -> anyhow::Result<Self> {
        let parts = resolve(&config.tables(), "")?.methods;
        let device = base.clone().autodiff();
        let model = {
            let _turn = BACKEND_RNG
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            device.seed(config.seed);
            parts.model.build(input, &device)?
        };
        let table = model.describe();
        let built = parts
            .optimizer
            .build(&table, parts.regularizer.clone())
            .map_err(|e| e.under("optimizer"))?;
        let spheres = parts
            .optimizer
            .spheres(&table)
            .map_err(|e| e.under("optimizer"))?;
        let masked: Vec<ParamInfo> = match &parts.topology {
            Some(t) => table.iter().filter(|p| t.applies_to(p)).cloned().collect(),
            None => Vec::new(),
        };
        let masks = match &parts.topology {
            Some(t) => DeviceMasks::new(t.masked_entries()),
            None => DeviceMasks::default(),
        };
        let mut trainee = Self {
            model: Some(model),
            table,
            optim: built.optim,
            resets: built.resets,
            regularizer: parts.regularizer,
            topology: parts.topology,
            masked,
            masks,
            loss_values: parts.losses.iter().map(|_| DeviceSum::default()).collect(),
            losses: parts.losses,
            spheres,
            trace: Vec::new(),
            loss_fn: CrossEntropyLossConfig::new().init(&device),
            device,
        };
        let values = trainee.masked_values();
        if let Some(t) = trainee.topology.as_mut()
            && let Some(m) = t.init(&ctx, &as_host(&trainee.masked, &values))
        {
            trainee.set_masks(&m);
        }
        Ok(trainee)
    }

    /// The model, holding `w ⊙ m`.
    pub fn model(&self) -> &Model {
        self.model
            .as_ref()
            .expect("the model is only taken within a step, which puts it back")
    }

    /// Passes the model through `update` by value, with no other handle to its tensors alive
    /// meanwhile: flex updates a tensor's storage in place when it is the tensor's only owner,
    /// and a second handle (a clone kept in `self`) would make every update allocate and copy.
    fn update_model(&mut self, update: impl FnOnce(&mut Self, Model) -> Model) {
        let model = self
            .model
            .take()
            .expect("the model is only taken within a step, which puts it back");
        let model = update(self, model);
        self.model = Some(model);
    }

    /// The parameters the topology masks.
    pub fn masked(&self) -> &[ParamInfo] {
        &self.masked
    }

    /// The current masks.
    pub fn masks(&self) -> &DeviceMasks {
        &self.masks
    }

    /// What the model's parameters are.
    pub fn table(&self) -> &ParamTable {
        &self.table
    }

    /// Host copies of the optimiser's state tensors.
    pub fn optimizer_state(&self) -> Vec<StateTensor> {
        state_tensors(&self.optim)
    }

    /// The trainable parameters and optimiser state tensors that hold subnormal values, with
    /// how many each: none while the compute threads flush subnormals
    /// ([`crate::float_mode`]) and pruned weights carry no state ([`DeviceMasks::set`]).
    pub fn subnormals(&self) -> Vec<(String, usize)> {
        let count = |v: &[f32]| v.iter().filter(|x| x.is_subnormal()).count();
        let (params, values) = trainable_values(self.model(), &self.table);
        let weights = params
            .iter()
            .zip(&values)
            .map(|(p, v)| (p.path.clone(), count(v)));
        let path = |id: ParamId| self.table.get(id).map_or("?", |p| p.path.as_str());
        let state = self.optimizer_state().into_iter().map(|s| {
            let field = s.name.split_once('.').map_or(s.name.as_str(), |(_, f)| f);
            (
                format!("{}: state {field}", path(s.param)),
                count(&s.values),
            )
        });
        weights.chain(state).filter(|(_, n)| *n > 0).collect()
    }

    /// The topology, if any.
    pub fn topology(&self) -> Option<&dyn Topology> {
        self.topology.as_deref()
    }

    /// Ids of the masked parameters.
    fn masked_ids(&self) -> Vec<ParamId> {
        self.masked.iter().map(|p| p.id).collect()
    }

    /// Host copies of the masked parameters (`w ⊙ m`).
    pub fn masked_values(&self) -> Vec<Vec<f32>> {
        host_values(self.model(), &self.masked_ids())
    }

    /// Measured and predicted Hoyer sparsity of every sphere-constrained layer (empty when the
    /// optimiser constrains none).
    fn sphere_report(&self, seed: u64) -> Vec<SphereLayer> {
        let constrained: Vec<(&ParamInfo, f64)> = self
            .table
            .iter()
            .zip(&self.spheres)
            .filter_map(|(info, p)| p.map(|p| (info, p)))
            .collect();
        if constrained.is_empty() {
            return Vec::new();
        }
        let ids: Vec<ParamId> = constrained.iter().map(|(i, _)| i.id).collect();
        let values = host_values(self.model(), &ids);
        let layers: Vec<(&ParamInfo, f64, &[f32])> = constrained
            .iter()
            .zip(&values)
            .map(|((info, p), v)| (*info, *p, v.as_slice()))
            .collect();
        sphere_report(&layers, seed)
    }

    /// New masks: latent values (if kept) come back, masks change, `w ⊙ m` again; entries the
    /// masks regrow, or zero for good, get their optimiser state reset
    /// ([`DeviceMasks::set`]).
    fn set_masks(&mut self, masks: &[Mask]) {
        self.update_model(|t, model| {
            let model = t.masks.reveal(model);
            for (id, entries) in t.masks.set(masks, &t.device) {
                t.resets.request(id, entries);
            }
            t.masks.hide(model)
        });
    }

    /// Mean value of each loss term over the steps it was due since the last call, by name.
    fn take_loss_values(&mut self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (i, (term, sum)) in self.losses.iter().zip(&mut self.loss_values).enumerate() {
            if let Some(v) = sum.take_mean() {
                let key = if out.contains_key(term.name()) {
                    format!("{}#{i}", term.name())
                } else {
                    term.name().to_string()
                };
                out.insert(key, v);
            }
        }
        out
    }

    /// One optimiser step (the five stages of the module docs) at learning rate `lr`; returns
    /// the batch's summed task loss and number of correct predictions, left on the device.
    pub fn step(&mut self, batch: Batch, lr: f64, step: usize) -> (Tensor<1>, Tensor<1, Int>) {
        let due_terms: Vec<usize> = (0..self.losses.len())
            .filter(|&i| self.losses[i].due(step))
            .collect();
        let out = self.model().forward(batch.images, !due_terms.is_empty());
        let task = self
            .loss_fn
            .forward(out.logits.clone(), batch.labels.clone());
        let summed = task.clone().inner().mul_scalar(batch.len as f64);
        let hits = top_k_hits(out.logits.inner(), batch.labels, 1);
        let mut loss = task;
        for i in due_terms {
            if let Some(value) = self.losses[i].loss(&out.features) {
                self.loss_values[i].add(value.clone().inner());
                loss = loss + value;
            }
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), self.model());
        let due = self.topology.as_ref().is_some_and(|t| t.due(step));
        let dense_grads = (due && self.topology.as_ref().is_some_and(|t| t.needs_dense_grad()))
            .then(|| host_grads(self.model(), &grads, &self.masked_ids()));
        self.masks.mask_grads(self.model(), &mut grads);
        self.update_model(|t, model| {
            let model = t.masks.reveal(model);
            let model = t.optim.step(lr, model, grads);
            t.masks.hide(model)
        });
        if due {
            let values = self.masked_values();
            if let Some(t) = self.topology.as_mut()
                && let Some(m) = t.update(
                    step,
                    &as_host(&self.masked, &values),
                    dense_grads.as_deref(),
                )
            {
                self.set_masks(&m);
                self.trace.push((step, Mask::overall_sparsity(&m)));
            }
        }
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
    let mut trainee =
        Trainee::new(cfg, input, base, ctx).with_context(|| format!("run {}", run.id))?;
    let mut pattern = group_pattern(trainee.model(), &trainee.table);
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
        let valid = trainee.model().valid();
        if !data.val.is_empty() {
            let (l, a, _) = evaluate(&valid, &data.val, data, base);
            (record.val_loss, record.val_accuracy) = (Some(l), Some(a));
        }
        (record.test_loss, record.test_accuracy, record.test_top5) =
            evaluate(&valid, &data.test, data, base);
        record.stage_cka = stage_cka(&valid, data, base);
        record.cka = mean_cka(&record.stage_cka);
        record.loss_terms = trainee.take_loss_values();
        record.sparsity_trace = std::mem::take(&mut trainee.trace);
        record.penalty = trainee
            .regularizer
            .as_deref()
            .map(|r| penalty(trainee.model(), &trainee.table, r));
        pattern = weight_metrics(
            trainee.model(),
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
        identification_epoch: identification_from(&epochs),
        train_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        samples_per_sec: trained_samples / train_seconds.max(1e-9),
        note: diverged,
        spheres: trainee.sphere_report(cfg.seed),
        weight_histogram: Some(weight_histogram(trainee.model(), &trainee.table)),
    };
    Ok((outcome, epochs))
}
