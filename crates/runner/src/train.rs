//! Training one run: epochs of [`Trainee::step`]s, evaluation and metrics after every epoch,
//! the records handed to an observer.
//!
//! After every epoch: evaluate on the validation and test splits, measure sparsity, compression,
//! speedup, Hoyer sparsity and the mean inter-layer CKA of each stage, and hand the records to
//! the observer (which persists them). A run whose training loss becomes NaN or infinite stops
//! and is recorded as diverged.
//!
//! After every epoch but the last, and at the first step boundary after the observer asks to
//! stop, the run hands the observer a [`Checkpoint`]; given one back, [`train`] goes on from it
//! and ends with the records and weights of an uninterrupted run, bit for bit (timings aside).

use crate::checkpoint::{Checkpoint, Position};
use crate::experiment::PlannedRun;
use crate::interrupt::Interrupted;
use crate::record::{EpochRecord, FinalRecord, Status, best_validation, identification_from};
use crate::similarity::{mean_cka, stage_cka};
use crate::sphere_report;
use crate::trainee::{Trainee, trainable_values};
use anyhow::Context;
use burn::module::{Module, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sparselab_core::param::{device_weights, host_values};
use sparselab_core::{ParamInfo, ParamTable};
use sparselab_data::loader::Order;
use sparselab_data::{Dataset, Split, batches};
use sparselab_metrics::accuracy::top_k_correct;
use sparselab_metrics::conv_structure::conv_structure;
use sparselab_metrics::group::{churn, group_report, input_groups};
use sparselab_metrics::hoyer::{layer_hoyer, weighted_hoyer};
use sparselab_metrics::magnitude::MagnitudeHistogram;
use sparselab_metrics::sparsity::report_table;
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_regularizers::Regularizer;
use sparselab_topology::TopologyContext;
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
    /// Called with a checkpoint after every epoch but the last and when the run stops because
    /// [`stop`](Observer::stop) said so; an error stops the run. Default: checkpoints are not
    /// kept.
    fn checkpoint(&mut self, _checkpoint: &Checkpoint) -> anyhow::Result<()> {
        Ok(())
    }
    /// Called once with the trained trainee, when the run ends (finished or diverged); an error
    /// stops the run. Default: nothing.
    fn trained(&mut self, _trainee: &Trainee) -> anyhow::Result<()> {
        Ok(())
    }
    /// Whether the run should stop now (asked after every step): it then writes a checkpoint
    /// and [`train`] returns [`Interrupted`]. Default: never.
    fn stop(&mut self) -> bool {
        false
    }
}

/// Evaluation of one split: `(mean loss, top-1 accuracy, top-5 accuracy if ≥ 100 classes)`.
pub(crate) fn evaluate(
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
    let structure = conv_structure(pairs());
    record.kernel_sparsity = structure.map(|s| s.kernel_sparsity);
    record.filter_sparsity = structure.map(|s| s.filter_sparsity);
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

/// Trains `run` on `data` on device `base` (autodiff is added here), from its start or, given
/// `resume`, from a checkpoint this function wrote for the same run; returns the outcome and
/// the per-epoch records.
///
/// # Errors
/// [`Interrupted`] when the observer asked to stop (a checkpoint was handed to it first); any
/// error of the observer; a checkpoint that does not fit the run.
pub fn train(
    run: &PlannedRun,
    data: &Dataset,
    base: &Device,
    observer: &mut dyn Observer,
    resume: Option<Checkpoint>,
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
    let mut at = match resume {
        Some(c) => {
            trainee
                .resume(c.trainee)
                .with_context(|| format!("resuming run {} from its checkpoint", run.id))?;
            Position {
                resumed: c.position.resumed + 1,
                ..c.position
            }
        }
        None => Position {
            pattern: group_pattern(trainee.model(), trainee.table()),
            ..Position::default()
        },
    };
    let mut diverged: Option<String> = None;
    let first_epoch = at.epoch;
    'epochs: for epoch in first_epoch..cfg.train.epochs {
        let t0 = Instant::now();
        // Resuming inside an epoch: its sums so far, and the batches already taken skipped.
        let (skip, loss_so_far, hits_so_far, seconds_so_far) = if epoch == first_epoch {
            (at.step_in_epoch, at.loss_sum, at.hits, at.epoch_seconds)
        } else {
            (0, 0.0, 0, 0.0)
        };
        let mut loss_sum = Tensor::<1>::from_data(TensorData::new(vec![loss_so_far], [1]), base);
        let mut hits = Tensor::<1, Int>::from_data(TensorData::new(vec![hits_so_far], [1]), base);
        let order = Order::Shuffled {
            seed: cfg.seed,
            epoch,
            augment: data.augment,
        };
        let mut lr = cfg.train.lr;
        let device = trainee.device().clone();
        let batches = batches(&data.train, data.shape, cfg.train.batch, order, &device);
        for (i, batch) in batches.enumerate().skip(skip) {
            at.step += 1;
            let step = at.step;
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
                    at.train_seconds += seconds_so_far + t0.elapsed().as_secs_f64();
                    break 'epochs;
                }
                observer.step(epoch + 1, i + 1, steps_per_epoch, value);
            }
            if i + 1 < steps_per_epoch && observer.stop() {
                let position = Position {
                    epoch,
                    step_in_epoch: i + 1,
                    loss_sum: loss_sum.into_scalar::<f32>(),
                    hits: hits.into_scalar::<i64>(),
                    epoch_seconds: seconds_so_far + t0.elapsed().as_secs_f64(),
                    wall_seconds: at.wall_seconds + started.elapsed().as_secs_f64(),
                    ..at
                };
                return stop_with(observer, &trainee, position);
            }
        }
        let epoch_seconds = seconds_so_far + t0.elapsed().as_secs_f64();
        at.train_seconds += epoch_seconds;
        let n = data.train.len() as f64;
        let mut record = EpochRecord {
            epoch: epoch + 1,
            step: at.step,
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
        record.sparsity_trace = trainee.take_trace();
        record.penalty = trainee
            .regularizer()
            .map(|r| penalty(trainee.model(), trainee.table(), r));
        at.pattern = weight_metrics(
            trainee.model(),
            trainee.table(),
            &at.pattern,
            data.relevant_features.as_deref(),
            &mut record,
        );
        at.epochs.push(record);
        observer.epoch(&at.epochs).context("recording an epoch")?;
        if epoch + 1 < cfg.train.epochs {
            let position = Position {
                epoch: epoch + 1,
                step_in_epoch: 0,
                loss_sum: 0.0,
                hits: 0,
                epoch_seconds: 0.0,
                wall_seconds: at.wall_seconds + started.elapsed().as_secs_f64(),
                ..at.clone()
            };
            if observer.stop() {
                return stop_with(observer, &trainee, position);
            }
            hand_checkpoint(observer, &trainee, position)?;
        }
    }

    observer.trained(&trainee)?;
    let epochs = at.epochs;
    let best = best_validation(&epochs);
    let trained_samples =
        (at.step.min(total_steps) as f64 / steps_per_epoch as f64) * data.train.len() as f64;
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
        train_seconds: at.train_seconds,
        wall_seconds: at.wall_seconds + started.elapsed().as_secs_f64(),
        samples_per_sec: trained_samples / at.train_seconds.max(1e-9),
        note: diverged,
        spheres: sphere_report::of_trainee(&trainee, cfg.seed),
        weight_histogram: Some(weight_histogram(trainee.model(), trainee.table())),
        resumed: at.resumed,
        measured_speedup_b1: None,
        measured_speedup_b128: None,
    };
    Ok((outcome, epochs))
}

/// Hands the observer the checkpoint of `trainee` at `position`.
fn hand_checkpoint(
    observer: &mut dyn Observer,
    trainee: &Trainee,
    position: Position,
) -> anyhow::Result<()> {
    let checkpoint = Checkpoint {
        position,
        trainee: trainee.checkpoint_state()?,
    };
    observer
        .checkpoint(&checkpoint)
        .context("writing a checkpoint")
}

/// Hands the observer a checkpoint at `position` and stops the run.
fn stop_with(
    observer: &mut dyn Observer,
    trainee: &Trainee,
    position: Position,
) -> anyhow::Result<(FinalRecord, Vec<EpochRecord>)> {
    let (epoch, step) = (position.epoch + 1, position.step);
    hand_checkpoint(observer, trainee, position)?;
    Err(Interrupted { epoch, step }.into())
}
