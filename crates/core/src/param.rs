//! What a model's parameters are.
//!
//! Regularizers, masks and metrics act on *weight tensors* (SPEC.md, notation: the 2-D weights
//! of linear layers and 4-D weights of conv layers); biases and normalisation parameters are
//! trained but never regularised, pruned or constrained unless a method says so. A
//! [`ParamTable`] records, for every float parameter of a model, its path, shape, role and
//! whether it belongs to the classifier, read off the module tree by a visitor, so no method
//! ever matches parameter names by hand.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;
use std::collections::HashMap;

/// The kind of layer a weight tensor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightKind {
    /// `burn::nn::Linear`: weight `[d_in, d_out]`.
    Linear,
    /// `burn::nn::conv::Conv2d`: weight `[c_out, c_in, k_h, k_w]`.
    Conv,
}

/// What a parameter is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamRole {
    /// A weight tensor: what sparsity methods act on.
    Weight(WeightKind),
    /// A bias vector.
    Bias,
    /// A normalisation parameter (scale, shift).
    Norm,
    /// Non-trained state stored as a parameter (batch-norm running statistics): not counted as a
    /// parameter of the network.
    Buffer,
    /// Anything else.
    Other,
}

/// One float parameter of a model.
#[derive(Clone, Debug, Serialize)]
pub struct ParamInfo {
    /// burn's parameter id (stable across optimiser steps).
    #[serde(skip)]
    pub id: ParamId,
    /// Dotted module path, e.g. `fc1.weight`.
    pub path: String,
    /// Path of the owning layer, e.g. `fc1`.
    pub layer: String,
    /// Tensor shape in burn's layout.
    pub shape: Vec<usize>,
    /// What the parameter is for.
    pub role: ParamRole,
    /// Whether the parameter belongs to the classifier (last layer).
    pub classifier: bool,
    /// How many times per sample the weight is applied: 1 for a linear layer, `H_out·W_out` for
    /// a conv layer. Multiply-accumulates per sample = `numel · positions` (used for FLOPs).
    pub positions: usize,
}

impl ParamInfo {
    /// A free-standing description (a fresh id, path `name`, layer `name`, one output position,
    /// not the classifier): for tests and for tools that describe tensors outside a module.
    pub fn new(name: &str, role: ParamRole, shape: Vec<usize>) -> Self {
        Self {
            id: ParamId::new(),
            path: name.to_string(),
            layer: name.to_string(),
            shape,
            role,
            classifier: false,
            positions: 1,
        }
    }

    /// A weight tensor of `kind` and `shape` (see [`ParamInfo::new`]).
    pub fn weight(kind: WeightKind, shape: Vec<usize>) -> Self {
        Self::new("w", ParamRole::Weight(kind), shape)
    }

    /// Number of scalars.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The weight kind, if this is a weight tensor.
    pub fn weight_kind(&self) -> Option<WeightKind> {
        match self.role {
            ParamRole::Weight(kind) => Some(kind),
            _ => None,
        }
    }

    /// Whether this is a weight tensor (linear or conv).
    pub fn is_weight(&self) -> bool {
        self.weight_kind().is_some()
    }

    /// `(fan_in, fan_out, kernel_h, kernel_w)` of a weight tensor: `n_in`, `n_out` and the
    /// kernel size (1×1 for linear layers).
    pub fn fans(&self) -> Option<(usize, usize, usize, usize)> {
        match (self.weight_kind()?, self.shape.as_slice()) {
            (WeightKind::Linear, [d_in, d_out]) => Some((*d_in, *d_out, 1, 1)),
            (WeightKind::Conv, [c_out, c_in, kh, kw]) => Some((*c_in, *c_out, *kh, *kw)),
            _ => None,
        }
    }
}

impl ParamInfo {
    /// Number of output units (neurons of a linear layer, filters of a conv layer): the rows of
    /// SPEC's `[out, in]` view. 1 for anything that is not a weight tensor.
    pub fn units(&self) -> usize {
        match (self.weight_kind(), self.shape.as_slice()) {
            (Some(WeightKind::Linear), [_, d_out]) => *d_out,
            (Some(WeightKind::Conv), [c_out, ..]) => *c_out,
            _ => 1,
        }
    }

    /// The output unit that element `i` (flattened in burn's memory order) feeds: `i mod d_out`
    /// for a linear weight `[d_in, d_out]`, `i / fan_in` for a conv weight `[c_out, c_in, kh, kw]`.
    pub fn unit_of(&self, i: usize) -> usize {
        match (self.weight_kind(), self.shape.as_slice()) {
            (Some(WeightKind::Linear), [_, d_out]) => i % d_out,
            (Some(WeightKind::Conv), [c_out, ..]) => i / (self.numel() / c_out).max(1),
            _ => 0,
        }
    }
}

/// Every float parameter of a model, in module order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ParamTable {
    params: Vec<ParamInfo>,
}

impl ParamTable {
    /// A table from its entries.
    pub fn new(params: Vec<ParamInfo>) -> Self {
        Self { params }
    }

    /// Describes `module`: roles come from the owning layer's type (`Linear`, `Conv2d`, any
    /// `*Norm`) and the parameter's field name; parameters under `classifier` (a layer path) are
    /// flagged as the classifier; `positions(layer)` gives the number of output positions of a
    /// conv layer (ignored for other layers).
    pub fn describe<M: Module>(
        module: &M,
        classifier: &str,
        positions: impl Fn(&str) -> usize,
    ) -> Self {
        let mut visitor = Describer::default();
        module.visit(&mut visitor);
        let params = visitor
            .found
            .into_iter()
            .map(|mut p| {
                p.classifier =
                    p.layer == classifier || p.layer.starts_with(&format!("{classifier}."));
                p.positions = match p.role {
                    ParamRole::Weight(WeightKind::Conv) => positions(&p.layer),
                    _ => 1,
                };
                p
            })
            .collect();
        Self { params }
    }

    /// All parameters.
    pub fn iter(&self) -> impl Iterator<Item = &ParamInfo> {
        self.params.iter()
    }

    /// Weight tensors only (linear and conv).
    pub fn weights(&self) -> impl Iterator<Item = &ParamInfo> {
        self.params.iter().filter(|p| p.is_weight())
    }

    /// The parameter with id `id`.
    pub fn get(&self, id: ParamId) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.id == id)
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Trainable parameters (everything but [`ParamRole::Buffer`]).
    pub fn trainable(&self) -> impl Iterator<Item = &ParamInfo> {
        self.params.iter().filter(|p| p.role != ParamRole::Buffer)
    }

    /// Total number of trainable scalars.
    pub fn numel(&self) -> usize {
        self.trainable().map(ParamInfo::numel).sum()
    }
}

/// Canonical rank-4 views (on the device, without autodiff) of parameters `ids` of `module`, in
/// the order of `ids`.
pub fn device_weights<M: Module>(module: &M, ids: &[ParamId]) -> Vec<crate::Weight> {
    struct Collect<'a> {
        ids: &'a [ParamId],
        found: HashMap<ParamId, crate::Weight>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.ids.contains(&param.id) && crate::Layout::of_rank(D).is_some() {
                self.found
                    .insert(param.id, crate::Weight::from_tensor(param.val().inner()));
            }
        }
    }
    let mut c = Collect {
        ids,
        found: HashMap::new(),
    };
    module.visit(&mut c);
    ids.iter()
        .map(|id| {
            c.found
                .remove(id)
                .unwrap_or_else(|| panic!("parameter {id} is not in the module"))
        })
        .collect()
}

/// Host copies (flattened, burn's memory order) of the values of parameters `ids` of `module`,
/// in the order of `ids`.
///
/// # Panics
/// If an id is not a float parameter of `module`.
pub fn host_values<M: Module>(module: &M, ids: &[ParamId]) -> Vec<Vec<f32>> {
    let mut collect = HostCollector::new(ids, None);
    module.visit(&mut collect);
    collect.into_ordered(ids)
}

/// Host copies of the gradients of parameters `ids` (zeros where a parameter has none).
pub fn host_grads<M: Module>(
    module: &M,
    grads: &GradientsParams,
    ids: &[ParamId],
) -> Vec<Vec<f32>> {
    let mut collect = HostCollector::new(ids, Some(grads));
    module.visit(&mut collect);
    collect.into_ordered(ids)
}

/// `param` with its value replaced by `value(inner)` computed outside the autodiff graph: the
/// result is a fresh leaf (like an optimiser update) that requires a gradient exactly when the
/// old value did.
pub fn replace_value<const D: usize>(
    param: Param<Tensor<D>>,
    value: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    let (id, tensor, mapper) = param.consume();
    let (autodiff, require_grad) = (tensor.is_autodiff(), tensor.is_require_grad());
    let mut out = value(tensor.inner());
    if autodiff {
        out = out.autodiff();
        if require_grad {
            out = out.require_grad();
        }
    }
    Param::from_mapped_value(id, out, mapper)
}

/// `module` with the values of the parameters in `values` (flattened, burn's memory order)
/// replaced: the inverse of [`host_values`], bit for bit.
///
/// # Errors
/// If a value's length is not its parameter's number of entries.
pub fn set_values<M: Module>(module: M, values: &HashMap<ParamId, Vec<f32>>) -> Result<M, String> {
    struct Set<'a> {
        values: &'a HashMap<ParamId, Vec<f32>>,
        error: Option<String>,
    }
    impl ModuleMapper for Set<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(v) = self.values.get(&param.id) else {
                return param;
            };
            let dims = param.val().dims();
            if dims.iter().product::<usize>() != v.len() {
                self.error = Some(format!(
                    "a parameter of shape {dims:?} was given {} values",
                    v.len()
                ));
                return param;
            }
            replace_value(param, |w| {
                Tensor::from_data(TensorData::new(v.clone(), dims), &w.device())
            })
        }
    }
    let mut set = Set {
        values,
        error: None,
    };
    let module = module.map(&mut set);
    match set.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}

struct HostCollector<'a> {
    wanted: Vec<ParamId>,
    grads: Option<&'a GradientsParams>,
    found: HashMap<ParamId, Vec<f32>>,
}

impl<'a> HostCollector<'a> {
    fn new(ids: &[ParamId], grads: Option<&'a GradientsParams>) -> Self {
        Self {
            wanted: ids.to_vec(),
            grads,
            found: HashMap::new(),
        }
    }

    fn into_ordered(mut self, ids: &[ParamId]) -> Vec<Vec<f32>> {
        ids.iter()
            .map(|id| {
                self.found
                    .remove(id)
                    .unwrap_or_else(|| panic!("parameter {id} is not in the module"))
            })
            .collect()
    }
}

impl ModuleVisitor for HostCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.wanted.contains(&param.id) {
            return;
        }
        let tensor = match self.grads {
            None => param.val(),
            Some(grads) => match grads.get::<D>(param.id) {
                Some(g) => g,
                None => param.val().zeros_like(),
            },
        };
        let values = tensor
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float parameter data");
        self.found.insert(param.id, values);
    }
}

/// Collects parameters with their path and the type of the struct that owns them.
#[derive(Default)]
struct Describer {
    /// `(field name, container type)` of every module entered so far.
    stack: Vec<(String, String)>,
    found: Vec<ParamInfo>,
}

impl ModuleVisitor for Describer {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let names: Vec<&str> = self.stack.iter().map(|(n, _)| n.as_str()).collect();
        let (field, owner) = self
            .stack
            .last()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .unwrap_or(("", ""));
        let owner = owner.strip_prefix("Struct:").unwrap_or(owner);
        let role = match (owner, field, D) {
            ("Linear", "weight", 2) => ParamRole::Weight(WeightKind::Linear),
            ("Conv2d", "weight", 4) => ParamRole::Weight(WeightKind::Conv),
            (_, "bias", 1) if owner == "Linear" || owner == "Conv2d" => ParamRole::Bias,
            (_, f, _) if f.starts_with("running_") => ParamRole::Buffer,
            (o, _, _) if o.ends_with("Norm") => ParamRole::Norm,
            _ => ParamRole::Other,
        };
        let layer = names[..names.len().saturating_sub(1)].join(".");
        self.found.push(ParamInfo {
            id: param.id,
            path: names.join("."),
            layer,
            shape: param.lazy_shape().to_vec(),
            role,
            classifier: false,
            positions: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Tiny {
        conv: Conv2d,
        bn: BatchNorm,
        blocks: Vec<Linear>,
        head: Linear,
    }

    fn tiny() -> Tiny {
        let device = Device::flex();
        Tiny {
            conv: Conv2dConfig::new([3, 8], [3, 3]).init(&device),
            bn: BatchNormConfig::new(8).init(&device),
            blocks: vec![LinearConfig::new(8, 8).init(&device)],
            head: LinearConfig::new(8, 10).init(&device),
        }
    }

    /// Element i of a linear `[d_in, d_out]` weight sits at row i / d_out, column i mod d_out
    /// and feeds output unit i mod d_out; a conv filter owns a contiguous block of c_in·kh·kw.
    #[test]
    fn unit_of_follows_burn_layouts() {
        let lin = ParamInfo::weight(WeightKind::Linear, vec![3, 2]);
        assert_eq!(lin.units(), 2);
        let units: Vec<usize> = (0..6).map(|i| lin.unit_of(i)).collect();
        assert_eq!(units, vec![0, 1, 0, 1, 0, 1]);
        let conv = ParamInfo::weight(WeightKind::Conv, vec![2, 3, 1, 2]);
        assert_eq!(conv.units(), 2);
        let units: Vec<usize> = (0..12).map(|i| conv.unit_of(i)).collect();
        assert_eq!(units, vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(ParamInfo::new("b", ParamRole::Bias, vec![4]).units(), 1);
    }

    #[test]
    fn roles_paths_and_classifier_are_read_off_the_module_tree() {
        let table = ParamTable::describe(&tiny(), "head", |layer| {
            assert_eq!(layer, "conv");
            36
        });
        let find = |path: &str| table.iter().find(|p| p.path == path).unwrap().clone();
        let conv = find("conv.weight");
        assert_eq!(conv.role, ParamRole::Weight(WeightKind::Conv));
        assert_eq!(conv.shape, vec![8, 3, 3, 3]);
        assert_eq!(conv.positions, 36);
        assert_eq!(conv.fans(), Some((3, 8, 3, 3)));
        assert_eq!(find("conv.bias").role, ParamRole::Bias);
        assert_eq!(find("bn.gamma").role, ParamRole::Norm);
        assert_eq!(find("bn.beta").role, ParamRole::Norm);
        let block = find("blocks.0.weight");
        assert_eq!(block.role, ParamRole::Weight(WeightKind::Linear));
        assert_eq!(block.layer, "blocks.0");
        assert!(!block.classifier);
        let head = find("head.weight");
        assert!(head.classifier && find("head.bias").classifier);
        assert_eq!(head.fans(), Some((8, 10, 1, 1)));
        assert_eq!(table.weights().count(), 3);
    }
}
