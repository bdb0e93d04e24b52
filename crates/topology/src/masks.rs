//! Masks on the device: zero the gradients of pruned weights, re-apply after every step.

use crate::topology::Mask;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;

/// The current masks as 0/1 tensors on the training device.
///
/// The training step uses them twice: [`mask_grads`](DeviceMasks::mask_grads) before the
/// optimiser step (so momentum and dual-averaging states never accumulate on pruned weights) and
/// [`apply`](DeviceMasks::apply) after it (`w ← w ⊙ m`), which makes a pruned weight exactly
/// `0.0` whatever the optimiser did.
#[derive(Clone, Debug, Default)]
pub struct DeviceMasks {
    masks: HashMap<ParamId, Tensor<1>>,
}

impl DeviceMasks {
    /// Replaces the masks of the parameters in `masks` (others keep theirs).
    pub fn set(&mut self, masks: &[Mask], device: &Device) {
        for m in masks {
            let values: Vec<f32> = m.keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            let n = values.len();
            let t = Tensor::<1>::from_data(TensorData::new(values, [n]), device).inner();
            self.masks.insert(m.id, t);
        }
    }

    /// Whether no parameter is masked (dense training).
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// `w ← w ⊙ m` for every masked parameter of `module`.
    pub fn apply<M: Module>(&self, module: M) -> M {
        if self.is_empty() {
            return module;
        }
        module.map(&mut Apply { masks: &self.masks })
    }

    /// `g ← g ⊙ m` for every masked parameter's gradient in `grads`.
    pub fn mask_grads<M: Module>(&self, module: &M, grads: &mut GradientsParams) {
        if !self.is_empty() {
            module.visit(&mut MaskGrads {
                masks: &self.masks,
                grads,
            });
        }
    }
}

struct Apply<'a> {
    masks: &'a HashMap<ParamId, Tensor<1>>,
}

impl ModuleMapper for Apply<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(mask) = self.masks.get(&param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let (autodiff, require_grad) = (tensor.is_autodiff(), tensor.is_require_grad());
        let dims = tensor.dims();
        // Masking happens outside the graph: the result is a fresh leaf, like an optimiser update.
        let mut masked = tensor.inner() * mask.clone().reshape(dims);
        if autodiff {
            masked = masked.autodiff();
            if require_grad {
                masked = masked.require_grad();
            }
        }
        Param::from_mapped_value(id, masked, mapper)
    }
}

struct MaskGrads<'a> {
    masks: &'a HashMap<ParamId, Tensor<1>>,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for MaskGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(mask) = self.masks.get(&param.id)
            && let Some(grad) = self.grads.remove::<D>(param.id)
        {
            let dims = grad.dims();
            self.grads
                .register(param.id, grad * mask.clone().reshape(dims));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use sparselab_optimizers::sgd::{Sgd, SgdConfig};

    /// A masked weight stays exactly 0.0 through momentum-SGD steps with weight decay, and
    /// unmasked weights keep training.
    #[test]
    fn masked_weights_stay_exactly_zero_through_optimiser_steps() {
        let device = Device::flex().autodiff();
        let mut layer: Linear = LinearConfig::new(4, 3).init(&device);
        let id = layer.weight.id;
        let keep: Vec<bool> = (0..12).map(|i| i % 3 != 0).collect();
        let mut masks = DeviceMasks::default();
        masks.set(
            &[Mask {
                id,
                keep: keep.clone(),
            }],
            &device,
        );
        layer = masks.apply(layer);
        let mut optim = burn::optim::ModuleOptimizer::from(Sgd::new(SgdConfig {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-2,
        }));
        let before: Vec<f32> = layer
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 3.0, 0.5, 2.0, 1.0, -1.0, 0.0], [2, 4]),
            &device,
        );
        for _ in 0..5 {
            let loss = layer.forward(x.clone()).powf_scalar(2.0).sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
            masks.mask_grads(&layer, &mut grads);
            layer = optim.step(0.1, layer, grads);
            layer = masks.apply(layer);
            assert!(layer.weight.val().is_require_grad());
        }
        let after: Vec<f32> = layer
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        for (i, k) in keep.iter().enumerate() {
            if *k {
                assert_ne!(after[i], before[i], "unmasked weight {i} should train");
            } else {
                assert_eq!(after[i], 0.0, "masked weight {i} = {}", after[i]);
            }
        }
    }
}
