//! Contract of every registered loss term: on a tiny residual MLP, its value is a finite scalar
//! and its autodiff gradient with respect to the parameters matches central finite differences.
//! The registry iterates, so a new term is covered without a new test.

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde_json::json;
use sparselab::models::{Architecture, InputShape, Model};

const INPUT: InputShape = InputShape {
    channels: 1,
    height: 2,
    width: 3,
    classes: 3,
};

/// Adds `delta` to entry `index` of parameter `id`.
struct Nudge {
    id: ParamId,
    index: usize,
    delta: f32,
}

impl ModuleMapper for Nudge {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if param.id != self.id {
            return param;
        }
        let (id, t, mapper) = param.consume();
        let dims = t.dims();
        let n: usize = dims.iter().product();
        let mut e = vec![0.0f32; n];
        e[self.index] = self.delta;
        let e = Tensor::<1>::from_data(TensorData::new(e, [n]), &t.device());
        Param::from_mapped_value(id, t + e.reshape(dims), mapper)
    }
}

#[test]
fn every_loss_term_has_finite_difference_gradients() {
    let registry = sparselab::losses::registry();
    for name in registry.names() {
        let mut table = registry.get(name).unwrap().defaults();
        let map = table.as_object_mut().unwrap();
        if map.contains_key("beta") {
            map.insert("beta".into(), json!(1.0));
        }
        map.insert("name".into(), json!(name));
        let term = registry.build(&table).unwrap().value;

        let device = Device::flex().autodiff();
        device.seed(11);
        let model: Model = sparselab::models::registry()
            .build(&json!({ "name": "resmlp", "width": 5, "depth": 3 }))
            .unwrap()
            .value
            .build(INPUT, &device)
            .unwrap();
        let x = Tensor::<4>::random([8, 1, 2, 3], Distribution::Normal(0.0, 1.0), &device);
        let value = |m: &Model| -> Tensor<1> {
            term.loss(&m.forward(x.clone(), true).features)
                .expect("resmlp has block features")
        };
        let v = value(&model);
        assert_eq!(v.dims(), [1], "{name}");
        let v0 = v.clone().into_scalar::<f64>();
        assert!(v0.is_finite(), "{name}: {v0}");
        let mut grads = GradientsParams::from_grads(v.backward(), &model);
        for p in model.describe().iter().filter(|p| p.is_weight()) {
            let Some(g) = grads.remove::<2>(p.id) else {
                assert!(p.classifier, "{name}: no gradient reaches {}", p.path);
                continue;
            };
            let g: Vec<f32> = g.into_data().try_into_vec_as::<f32>().unwrap();
            for index in [0, p.numel() / 2, p.numel() - 1] {
                let eps = 1e-2f32;
                let at = |delta| {
                    let m = model.clone().map(&mut Nudge {
                        id: p.id,
                        index,
                        delta,
                    });
                    value(&m).into_scalar::<f64>()
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
                let ad = f64::from(g[index]);
                assert!(
                    (fd - ad).abs() <= 0.05 * fd.abs().max(ad.abs()) + 1e-4,
                    "{name}: {} [{index}]: autodiff {ad} vs finite differences {fd}",
                    p.path
                );
            }
        }
    }
}
