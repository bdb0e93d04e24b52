//! Host copies of an optimiser's state, read from its burn record (the form a checkpoint
//! stores), for checks that hold for every optimiser alike: a weight zeroed for good carries no
//! state, and no state value is subnormal.

use burn::module::ParamId;
use burn::optim::ModuleOptimizer;
use burn_pack::{DType, Reader};

/// One f32 state tensor of one parameter, flattened in burn's memory order (the order of the
/// parameter's entries when it has one value per entry).
#[derive(Clone, Debug, PartialEq)]
pub struct StateTensor {
    /// The parameter whose state it is.
    pub param: ParamId,
    /// The field's name in the record (`<param id>.<field>`, nested fields joined by dots).
    pub name: String,
    /// Its values.
    pub values: Vec<f32>,
}

/// Every f32 state tensor of `optim` (scalars and other dtypes left out), in the record's order.
pub fn state_tensors(optim: &ModuleOptimizer) -> Vec<StateTensor> {
    let bytes = optim
        .to_record()
        .into_bytes()
        .expect("an optimiser record serialises");
    let tensors = Reader::from_bytes(bytes)
        .and_then(Reader::into_tensors)
        .expect("a record burn wrote reads back");
    tensors
        .into_iter()
        .filter(|t| t.dtype == DType::F32)
        .filter_map(|t| {
            let (name, _, _, id, bytes) = t.into_parts().expect("an in-memory tensor's bytes");
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            id.map(|id| StateTensor {
                param: ParamId::from(id),
                name,
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgd::{Sgd, SgdConfig};
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};

    /// After one momentum-SGD step the record holds the layer's two velocities, each equal to
    /// its gradient (the first step's momentum), under the layer's parameter ids.
    #[test]
    fn reads_each_parameters_momentum() {
        let device = Device::flex().autodiff();
        let layer: Linear = LinearConfig::new(3, 2).init(&device);
        let mut optim = ModuleOptimizer::from(Sgd::new(SgdConfig {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }));
        assert!(state_tensors(&optim).is_empty());
        let x = Tensor::<2>::ones([4, 3], &device);
        let loss = layer.forward(x).powf_scalar(2.0).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let host = |p: &Param<Tensor<2>>| -> Vec<f32> {
            grads
                .get::<2>(p.id)
                .expect("a gradient")
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let weight_grad = host(&layer.weight);
        let layer = optim.step(0.1, layer, grads);
        let state = state_tensors(&optim);
        let of = |id: ParamId| state.iter().find(|s| s.param == id).expect("a state");
        assert_eq!(of(layer.weight.id).values, weight_grad);
        assert_eq!(state.len(), 2);
    }
}
