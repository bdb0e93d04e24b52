//! Masks on the device: the forward pass sees `w ⊙ m`, masked gradients are zero, and masked
//! entries are either zeroed for good or kept as latent values (SPEC §2, "Masks and latent
//! weights").

use crate::topology::{Mask, MaskedEntries};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use sparselab_core::param::replace_value;
use std::collections::HashMap;

/// The current masks as 0/1 tensors on the training device, and the latent values of masked
/// entries when the topology keeps them.
///
/// Between steps the model holds `w ⊙ m`, so its forward pass, its evaluation and every metric
/// see the masked network, and the gradient of a masked entry is the dense gradient a regrowth
/// method ranks by. A training step uses the masks four times:
///
/// 1. [`mask_grads`](DeviceMasks::mask_grads): `g ← g ⊙ m`, so momentum and dual-averaging states
///    never accumulate gradient on masked entries;
/// 2. [`reveal`](DeviceMasks::reveal) before the optimiser step: with
///    [`MaskedEntries::Latent`] the model gets its latent values back (the optimiser updates
///    them, with a zero gradient); with [`MaskedEntries::Zeroed`] nothing changes;
/// 3. [`hide`](DeviceMasks::hide) after it: latent values are stored and the model holds
///    `w ⊙ m` again, so a zeroed masked weight is exactly `0.0` whatever the optimiser did;
/// 4. when a topology changes the masks: `reveal`, [`set`](DeviceMasks::set), `hide`.
#[derive(Clone, Debug)]
pub struct DeviceMasks {
    policy: MaskedEntries,
    masks: HashMap<ParamId, Tensor<1>>,
    /// Host copies of `masks`, to tell which entries a new mask regrows.
    host: HashMap<ParamId, Vec<bool>>,
    /// Full (latent) values of the masked parameters, kept with [`MaskedEntries::Latent`].
    latent: HashMap<ParamId, Tensor<1>>,
}

impl Default for DeviceMasks {
    fn default() -> Self {
        Self::new(MaskedEntries::Zeroed)
    }
}

impl DeviceMasks {
    /// No masks yet; masked entries will be handled by `policy`.
    pub fn new(policy: MaskedEntries) -> Self {
        Self {
            policy,
            masks: HashMap::new(),
            host: HashMap::new(),
            latent: HashMap::new(),
        }
    }

    /// Replaces the masks of the parameters in `masks` (others keep theirs; a parameter without
    /// a mask counts as all kept); returns, for every parameter with entries whose optimiser
    /// state must start afresh, those entries:
    ///
    /// - regrown entries (masked before, kept now), with either policy (SPEC §2: a regrown
    ///   weight's momentum starts at 0; §1.2 likewise for semi-pruning);
    /// - with [`MaskedEntries::Zeroed`], also pruned entries (kept before, masked now): a weight
    ///   zeroed for good carries no state either. Its state could not move it (`hide` zeroes it
    ///   after every step), but it would go on decaying into subnormal floats (`m ← 0.9·m` with a
    ///   zero gradient stays at the smallest subnormal for ever), and an update that couples
    ///   entries (a group or row norm) would read it. Latent entries keep their state: it moves
    ///   their latent values.
    pub fn set(&mut self, masks: &[Mask], device: &Device) -> Vec<(ParamId, Vec<bool>)> {
        let zeroed = self.policy == MaskedEntries::Zeroed;
        let mut restarted = Vec::new();
        for m in masks {
            let old = self.host.get(&m.id);
            let was_kept = |i: usize| old.is_none_or(|o| o[i]);
            let restart: Vec<bool> = (m.keep.iter().enumerate())
                .map(|(i, &now)| (now && !was_kept(i)) || (zeroed && !now && was_kept(i)))
                .collect();
            if restart.iter().any(|r| *r) {
                restarted.push((m.id, restart));
            }
            let values: Vec<f32> = m.keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            let n = values.len();
            let t = Tensor::<1>::from_data(TensorData::new(values, [n]), device).inner();
            self.masks.insert(m.id, t);
            self.host.insert(m.id, m.keep.clone());
        }
        restarted
    }

    /// Host copies of the latent values of the masked parameters in `ids` (full values, masked
    /// entries included), for those that have them ([`MaskedEntries::Latent`]): with the masks,
    /// what a checkpoint needs besides the model's `w ⊙ m`.
    pub fn latent_values(&self, ids: &[ParamId]) -> Vec<(ParamId, Vec<f32>)> {
        ids.iter()
            .filter_map(|id| {
                let t = self.latent.get(id)?;
                let v = t.clone().into_data().try_into_vec_as::<f32>().ok()?;
                Some((*id, v))
            })
            .collect()
    }

    /// Puts back masks and latent values saved from another process ([`get`](DeviceMasks::get),
    /// [`latent_values`](DeviceMasks::latent_values)), replacing the current ones; no optimiser
    /// state reset is implied (the saved resets pending are restored with the optimiser).
    pub fn restore(&mut self, masks: &[Mask], latent: Vec<(ParamId, Vec<f32>)>, device: &Device) {
        self.masks.clear();
        self.host.clear();
        self.latent.clear();
        let _fresh = self.set(masks, device);
        for (id, values) in latent {
            let n = values.len();
            let t = Tensor::<1>::from_data(TensorData::new(values, [n]), device).inner();
            self.latent.insert(id, t);
        }
    }

    /// The current mask of `id` (host copy), if it is masked.
    pub fn get(&self, id: ParamId) -> Option<&[bool]> {
        self.host.get(&id).map(Vec::as_slice)
    }

    /// Whether no parameter is masked (dense training).
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// The model holding full values → the model holding `w ⊙ m`; stores the full values as
    /// latent with [`MaskedEntries::Latent`].
    pub fn hide<M: Module>(&mut self, module: M) -> M {
        if self.is_empty() {
            return module;
        }
        let keep = self.policy == MaskedEntries::Latent;
        let mut mapper = Hide {
            masks: &self.masks,
            latent: keep.then_some(&mut self.latent),
        };
        module.map(&mut mapper)
    }

    /// The model holding `w ⊙ m` → the model holding its full values: the stored latent values
    /// with [`MaskedEntries::Latent`], unchanged with [`MaskedEntries::Zeroed`].
    pub fn reveal<M: Module>(&self, module: M) -> M {
        if self.latent.is_empty() {
            return module;
        }
        module.map(&mut Reveal {
            latent: &self.latent,
        })
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

struct Hide<'a> {
    masks: &'a HashMap<ParamId, Tensor<1>>,
    latent: Option<&'a mut HashMap<ParamId, Tensor<1>>>,
}

impl ModuleMapper for Hide<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(mask) = self.masks.get(&param.id) else {
            return param;
        };
        let id = param.id;
        let latent = &mut self.latent;
        replace_value(param, |w| {
            let dims = w.dims();
            if let Some(store) = latent.as_deref_mut() {
                store.insert(id, w.clone().reshape([dims.iter().product::<usize>()]));
            }
            w * mask.clone().reshape(dims)
        })
    }
}

struct Reveal<'a> {
    latent: &'a HashMap<ParamId, Tensor<1>>,
}

impl ModuleMapper for Reveal<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(latent) = self.latent.get(&param.id) else {
            return param;
        };
        replace_value(param, |w| latent.clone().reshape(w.dims()))
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
        layer = masks.hide(layer);
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
            layer = masks.hide(layer);
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

    fn host(layer: &Linear) -> Vec<f32> {
        layer
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    /// Latent entries: hidden from the model (exactly 0.0) but kept; `reveal` gives them back,
    /// and a mask change that regrows an entry restores its latent value and reports it.
    #[test]
    fn latent_entries_survive_and_regrowth_is_reported() {
        let device = Device::flex().autodiff();
        let layer: Linear = LinearConfig::new(2, 2).init(&device);
        let id = layer.weight.id;
        let full = host(&layer);
        let mut masks = DeviceMasks::new(MaskedEntries::Latent);
        let first = vec![true, false, true, false];
        assert!(
            masks
                .set(
                    &[Mask {
                        id,
                        keep: first.clone()
                    }],
                    &device
                )
                .is_empty()
        );
        let hidden = masks.hide(layer);
        let h = host(&hidden);
        assert_eq!((h[0], h[1], h[2], h[3]), (full[0], 0.0, full[2], 0.0));
        assert_eq!(host(&masks.reveal(hidden.clone())), full);
        let layer = masks.reveal(hidden);
        let regrown = masks.set(
            &[Mask {
                id,
                keep: vec![true, true, false, false],
            }],
            &device,
        );
        assert_eq!(regrown, vec![(id, vec![false, true, false, false])]);
        let h = host(&masks.hide(layer));
        assert_eq!((h[0], h[1], h[2], h[3]), (full[0], full[1], 0.0, 0.0));
        // Zeroed entries do not come back.
        let layer: Linear = LinearConfig::new(2, 2).init(&device);
        let id = layer.weight.id;
        let mut zeroed = DeviceMasks::new(MaskedEntries::Zeroed);
        zeroed.set(&[Mask { id, keep: first }], &device);
        let hidden = zeroed.hide(layer);
        assert_eq!(host(&zeroed.reveal(hidden.clone())), host(&hidden));
    }

    /// The entries whose optimiser state restarts: regrown ones with either policy, pruned ones
    /// (a parameter's first mask included) only when masked entries are zeroed for good.
    #[test]
    fn state_restarts_at_regrowth_and_at_zeroing() {
        let device = Device::flex();
        let id = ParamId::new();
        let mask = |keep: &[bool]| {
            [Mask {
                id,
                keep: keep.to_vec(),
            }]
        };
        for (policy, first, then) in [
            (
                MaskedEntries::Zeroed,
                vec![(id, vec![false, true, false, true])],
                vec![(id, vec![false, true, true, false])],
            ),
            (
                MaskedEntries::Latent,
                vec![],
                vec![(id, vec![false, true, false, false])],
            ),
        ] {
            let mut masks = DeviceMasks::new(policy);
            assert_eq!(
                masks.set(&mask(&[true, false, true, false]), &device),
                first
            );
            assert_eq!(masks.set(&mask(&[true, true, false, false]), &device), then);
            assert!(
                masks
                    .set(&mask(&[true, true, false, false]), &device)
                    .is_empty()
            );
        }
    }
}
