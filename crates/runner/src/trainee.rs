//! A run's live model and methods, and one training step.
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

use crate::checkpoint::TraineeState;
use crate::experiment::RunConfig;
use crate::resolve::resolve;
use anyhow::Context;
use burn::module::ParamId;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use sparselab_core::param::{host_grads, host_values, set_values};
use sparselab_core::{ParamInfo, ParamTable};
use sparselab_data::Batch;
use sparselab_losses::LossTerm;
use sparselab_metrics::accuracy::top_k_hits;
use sparselab_models::{Architecture, InputShape, Model};
use sparselab_optimizers::StateResets;
use sparselab_optimizers::state_record::{load_portable_record, portable_record};
use sparselab_optimizers::state_values::{StateTensor, state_tensors};
use sparselab_regularizers::Regularizer;
use sparselab_topology::{DeviceMasks, HostWeight, Mask, Topology, TopologyContext};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Host views of the masked parameters for a topology.
fn as_host<'a>(infos: &'a [ParamInfo], values: &'a [Vec<f32>]) -> Vec<HostWeight<'a>> {
    infos
        .iter()
        .zip(values)
        .map(|(info, v)| HostWeight { info, values: v })
        .collect()
}

/// The metrics of the model at the end of an epoch (everything but timing and losses).
/// Host copies of every trainable parameter, in table order.
pub(crate) fn trainable_values<'a>(
    model: &Model,
    table: &'a ParamTable,
) -> (Vec<&'a ParamInfo>, Vec<Vec<f32>>) {
    let params: Vec<&ParamInfo> = table.trainable().collect();
    let values = host_values(model, &params.iter().map(|p| p.id).collect::<Vec<_>>());
    (params, values)
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

    /// The Lp-sphere exponent the optimiser declares for every parameter (table order; `None`:
    /// unconstrained).
    pub fn sphere_exponents(&self) -> &[Option<f64>] {
        &self.spheres
    }

    /// The training device (with autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The regularizer the optimiser applies, if any.
    pub fn regularizer(&self) -> Option<&dyn Regularizer> {
        self.regularizer.as_deref()
    }

    /// `(step, sparsity of the masked tensors)` after each topology update since the last call.
    pub(crate) fn take_trace(&mut self) -> Vec<(usize, f64)> {
        std::mem::take(&mut self.trace)
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
    pub(crate) fn take_loss_values(&mut self) -> BTreeMap<String, f64> {
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

    /// Every parameter's id, in table order: positions in this order name parameters in a
    /// checkpoint, since ids differ between builds of one model.
    fn all_ids(&self) -> Vec<ParamId> {
        self.table.iter().map(|p| p.id).collect()
    }

    /// The masks in force, in the order of [`masked`](Trainee::masked); `None` while nothing
    /// is masked.
    fn current_masks(&self) -> Option<Vec<Mask>> {
        self.masked
            .iter()
            .map(|p| {
                self.masks.get(p.id).map(|keep| Mask {
                    id: p.id,
                    keep: keep.to_vec(),
                })
            })
            .collect()
    }

    /// Everything [`Trainee::resume`] needs to go on as this trainee would, in plain data
    /// ([`crate::checkpoint`]).
    pub fn checkpoint_state(&self) -> anyhow::Result<TraineeState> {
        let ids = self.all_ids();
        let position = |id: ParamId| ids.iter().position(|p| *p == id);
        let by_position = |pairs: Vec<(ParamId, Vec<bool>)>| {
            let mut out: Vec<(usize, Vec<bool>)> = pairs
                .into_iter()
                .filter_map(|(id, v)| Some((position(id)?, v)))
                .collect();
            out.sort_by_key(|(i, _)| *i);
            out
        };
        let masks = self
            .current_masks()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.id, m.keep))
            .collect();
        let latent = self
            .masks
            .latent_values(&self.masked_ids())
            .into_iter()
            .filter_map(|(id, v)| Some((position(id)?, v)))
            .collect();
        Ok(TraineeState {
            values: host_values(self.model(), &ids),
            masks: by_position(masks),
            latent,
            resets: by_position(self.resets.pending()),
            optimizer: portable_record(&self.optim, &ids).map_err(anyhow::Error::msg)?,
            topology: self
                .topology
                .as_ref()
                .map_or(serde_json::Value::Null, |t| t.state()),
            trace: self.trace.clone(),
            loss_sums: self
                .loss_values
                .iter()
                .map(|s| {
                    let total = s.total.clone().map(|t| t.into_scalar::<f32>());
                    (total, s.count)
                })
                .collect(),
        })
    }

    /// Puts back a [`checkpoint_state`](Trainee::checkpoint_state) saved from a trainee of the
    /// same configuration (possibly in another process): from here on, steps are that
    /// trainee's, bit for bit.
    ///
    /// # Errors
    /// If the state does not fit this model (another architecture); the trainee is then
    /// unusable.
    pub fn resume(&mut self, state: TraineeState) -> anyhow::Result<()> {
        let ids = self.all_ids();
        anyhow::ensure!(
            state.values.len() == ids.len(),
            "the checkpoint holds {} parameters and the model has {}",
            state.values.len(),
            ids.len()
        );
        let at = |i: usize| {
            ids.get(i)
                .copied()
                .with_context(|| format!("the checkpoint names parameter {i} of {}", ids.len()))
        };
        let values: HashMap<ParamId, Vec<f32>> = ids.iter().copied().zip(state.values).collect();
        let model = self.model.take().context("the model is in use")?;
        self.model = Some(set_values(model, &values).map_err(anyhow::Error::msg)?);
        let masks = (state.masks.into_iter())
            .map(|(i, keep)| Ok(Mask { id: at(i)?, keep }))
            .collect::<anyhow::Result<Vec<Mask>>>()?;
        let latent = (state.latent.into_iter())
            .map(|(i, v)| Ok((at(i)?, v)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.masks.restore(&masks, latent, &self.device);
        let resets = (state.resets.into_iter())
            .map(|(i, e)| Ok((at(i)?, e)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.resets.replace(resets);
        self.optim = load_portable_record(self.optim.clone(), state.optimizer, &ids)
            .map_err(anyhow::Error::msg)
            .context("the optimiser's state")?;
        let current = self.current_masks();
        if let Some(t) = self.topology.as_mut() {
            t.resume(current, &state.topology)
                .map_err(anyhow::Error::msg)
                .context("the topology's state")?;
        }
        self.trace = state.trace;
        anyhow::ensure!(
            state.loss_sums.len() == self.loss_values.len(),
            "the checkpoint holds {} loss terms' sums and the run has {}",
            state.loss_sums.len(),
            self.loss_values.len()
        );
        for (sum, (total, count)) in self.loss_values.iter_mut().zip(state.loss_sums) {
            sum.total = total.map(|x| {
                Tensor::<1>::from_data(TensorData::new(vec![x], [1]), &self.device).inner()
            });
            sum.count = count;
        }
        Ok(())
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
