//! Every registered model: the [`Model`] enum the runner trains (one variant per architecture)
//! and the registry that builds it from plain data. Adding a model: a file implementing
//! [`Architecture`] and [`Buildable`], and one line in the `models!` list below.

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use sparselab_core::{ConfigError, Entry, FromConfig, ParamTable, Registry};

/// Builds a model of one architecture from its config (the registry's payload).
pub trait ModelBuilder: Send + Sync {
    /// A freshly initialised model (initialisation draws from the device's random state; seed it
    /// first).
    fn build(&self, input: InputShape, device: &Device) -> Result<Model, ConfigError>;
}

/// Registry payload for a [`Buildable`] architecture.
pub struct Builder<A: Buildable>(A::Config);

impl<A: Buildable> FromConfig<dyn ModelBuilder> for Builder<A>
where
    Model: From<A>,
{
    type Config = A::Config;
    const NAME: &'static str = A::NAME;
    const SUMMARY: &'static str = A::SUMMARY;

    fn from_config(config: A::Config) -> Box<dyn ModelBuilder> {
        Box::new(Builder::<A>(config))
    }
}

impl<A: Buildable> ModelBuilder for Builder<A>
where
    Model: From<A>,
{
    fn build(&self, input: InputShape, device: &Device) -> Result<Model, ConfigError> {
        let model = Model::from(A::init(&self.0, input, device)?);
        initialize(&model);
        Ok(model)
    }
}

/// burn initialises parameters lazily, on first use, from the device's random state. Touching
/// every parameter right after construction makes initialisation happen now, so a model built
/// right after `device.seed(s)` depends only on `s`, not on what else uses the random state
/// before its first forward pass.
fn initialize(model: &Model) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

/// Declares the [`Model`] enum over every architecture and delegates [`Architecture`] to it.
macro_rules! models {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Any model of sparselab (what the runner trains).
        #[derive(Module, Debug)]
        #[allow(clippy::large_enum_variant)]
        pub enum Model {
            $(
                #[doc = concat!("[`", stringify!($ty), "`]")]
                $variant($ty),
            )*
        }

        $(
            impl From<$ty> for Model {
                fn from(m: $ty) -> Self {
                    Model::$variant(m)
                }
            }
        )*

        impl Architecture for Model {
            fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
                match self { $(Model::$variant(m) => m.forward(x, taps),)* }
            }
            fn classifier(&self) -> &'static str {
                match self { $(Model::$variant(m) => m.classifier(),)* }
            }
            fn conv_positions(&self, layer: &str) -> usize {
                match self { $(Model::$variant(m) => m.conv_positions(layer),)* }
            }
            fn describe(&self) -> ParamTable {
                match self { $(Model::$variant(m) => m.describe(),)* }
            }
        }

        /// Every registered model.
        pub fn registry() -> Registry<dyn ModelBuilder> {
            Registry::new("model", vec![$(Entry::of::<Builder<$ty>>(),)*])
        }
    };
}

models! {
    Mlp(crate::mlp::Mlp),
    RmdaMlp(crate::mlp_rmda::RmdaMlp),
    LeNet5(crate::lenet5::LeNet5),
    ResMlp(crate::resmlp::ResMlp),
    ResNet(crate::resnet_cifar::ResNet),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sparselab_core::{ParamRole, WeightKind};

    /// Seeding and building must not interleave with other tests' use of the device's random
    /// state.
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn build(table: serde_json::Value, input: InputShape) -> Model {
        let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        device.seed(0);
        registry()
            .build(&table)
            .unwrap()
            .value
            .build(input, &device)
            .unwrap()
    }

    const MNIST: InputShape = InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    const CIFAR: InputShape = InputShape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 100,
    };

    fn forward(model: &Model, input: InputShape, n: usize) -> Forward {
        let x = Tensor::<4>::zeros(
            [n, input.channels, input.height, input.width],
            &Device::flex(),
        );
        model.forward(x, true)
    }

    fn stage_widths(f: &Forward) -> Vec<Vec<usize>> {
        f.features
            .iter()
            .map(|s| s.iter().map(|t| t.dims()[1]).collect())
            .collect()
    }

    #[test]
    fn lenet_300_100_shapes_and_description() {
        let m = build(json!({"name": "mlp-300-100"}), MNIST);
        let f = forward(&m, MNIST, 3);
        assert_eq!(f.logits.dims(), [3, 10]);
        assert_eq!(stage_widths(&f), vec![vec![300, 100]]);
        let t = m.describe();
        let weights: Vec<_> = t.weights().collect();
        assert_eq!(
            weights.iter().map(|p| p.numel()).sum::<usize>(),
            784 * 300 + 300 * 100 + 100 * 10
        );
        assert!(
            weights
                .iter()
                .all(|p| p.role == ParamRole::Weight(WeightKind::Linear))
        );
        assert_eq!(weights.iter().filter(|p| p.classifier).count(), 1);
        assert!(weights.last().unwrap().classifier);
        assert_eq!(t.numel(), 266_610);
    }

    #[test]
    fn rmda_mlp_is_the_papers_seven_layer_stack() {
        let m = build(json!({"name": "mlp-rmda"}), MNIST);
        let f = forward(&m, MNIST, 2);
        assert_eq!(f.logits.dims(), [2, 10]);
        assert_eq!(stage_widths(&f), vec![vec![512, 256, 128, 64, 32, 16]]);
        let t = m.describe();
        let shapes: Vec<Vec<usize>> = t.weights().map(|p| p.shape.clone()).collect();
        let widths = [784, 512, 256, 128, 64, 32, 16, 10];
        let expected: Vec<Vec<usize>> = widths.windows(2).map(|w| vec![w[0], w[1]]).collect();
        assert_eq!(shapes, expected, "linear weights are [in, out]");
        assert!(t.weights().last().unwrap().classifier);
        assert_eq!(t.weights().filter(|p| p.classifier).count(), 1);
        assert!(
            registry()
                .build(&json!({"name": "mlp-rmda", "hidden": [10]}))
                .is_err(),
            "its widths are the paper's"
        );
    }

    /// LeNet-5's layers for conv widths `[c1, c2]`: stage widths, conv shapes and positions, and
    /// the flattened input of fc1.
    fn assert_lenet5_layers(m: &Model, [c1, c2]: [usize; 2]) {
        let f = forward(m, MNIST, 2);
        assert_eq!(f.logits.dims(), [2, 10]);
        assert_eq!(
            stage_widths(&f),
            vec![vec![c1 * 14 * 14], vec![c2 * 5 * 5], vec![120, 84]]
        );
        let t = m.describe();
        let conv: Vec<_> = t
            .weights()
            .filter(|p| p.weight_kind() == Some(WeightKind::Conv))
            .collect();
        assert_eq!(conv.len(), 2);
        assert_eq!(
            (conv[0].shape.clone(), conv[0].positions),
            (vec![c1, 1, 5, 5], 28 * 28)
        );
        assert_eq!(
            (conv[1].shape.clone(), conv[1].positions),
            (vec![c2, c1, 5, 5], 10 * 10)
        );
        assert_eq!(
            t.weights().find(|p| p.path == "fc1.weight").unwrap().shape,
            vec![c2 * 25, 120]
        );
    }

    #[test]
    fn lenet5_shapes_and_conv_positions() {
        assert_lenet5_layers(&build(json!({"name": "lenet5"}), MNIST), [6, 16]);
        let wide = build(json!({"name": "lenet5", "channels": [16, 32]}), MNIST);
        assert_lenet5_layers(&wide, [16, 32]);
        let err = registry()
            .build(&json!({"name": "lenet5", "channels": [8, 0]}))
            .err()
            .expect("a conv without channels")
            .to_string();
        assert!(err.contains("channels[1]"), "{err}");
    }

    /// `bn` is `plain` with BatchNorms added: the same weights, `norm_features` channels of γ
    /// and β in norm layers, and no parameter left unclassified.
    fn assert_batch_norm_adds_norms_only(plain: &Model, bn: &Model, norm_features: usize) {
        let (tp, tb) = (plain.describe(), bn.describe());
        let shapes = |t: &ParamTable| t.weights().map(|p| p.shape.clone()).collect::<Vec<_>>();
        assert_eq!(shapes(&tb), shapes(&tp), "the same weights");
        let norm: usize = tb
            .iter()
            .filter(|p| p.role == ParamRole::Norm)
            .map(|p| p.numel())
            .sum();
        assert_eq!(norm, 2 * norm_features, "γ and β of every norm");
        assert!(tp.iter().all(|p| p.role != ParamRole::Norm));
        assert!(tb.iter().all(|p| p.role != ParamRole::Other));
    }

    #[test]
    fn lenet5_batch_norm_adds_norm_layers_only() {
        let plain = build(json!({"name": "lenet5"}), MNIST);
        let bn = build(json!({"name": "lenet5", "batch_norm": true}), MNIST);
        let f = forward(&bn, MNIST, 2);
        assert_eq!(f.logits.dims(), [2, 10]);
        assert_batch_norm_adds_norms_only(&plain, &bn, 6 + 16 + 120 + 84);
    }

    #[test]
    fn mlp_batch_norm_adds_norm_layers_only() {
        let model = |bn: bool| {
            let config = json!({"name": "mlp-300-100", "hidden": [32, 16, 8], "batch_norm": bn});
            build(config, MNIST)
        };
        let (plain, bn) = (model(false), model(true));
        let f = forward(&bn, MNIST, 4);
        assert_eq!(f.logits.dims(), [4, 10]);
        assert_eq!(stage_widths(&f), vec![vec![32, 16, 8]]);
        assert_batch_norm_adds_norms_only(&plain, &bn, 32 + 16 + 8);
    }

    #[test]
    fn resmlp_is_one_stage_of_equal_width_blocks() {
        let m = build(json!({"name": "resmlp", "width": 32, "depth": 3}), MNIST);
        let f = forward(&m, MNIST, 2);
        assert_eq!(f.logits.dims(), [2, 10]);
        assert_eq!(stage_widths(&f), vec![vec![32, 32, 32]]);
        assert_eq!(m.describe().weights().count(), 1 + 2 * 3 + 1);
    }

    #[test]
    fn resnet20_stages_positions_and_norm_parameters() {
        let m = build(
            json!({"name": "resnet-cifar", "depth": 20, "width": 4}),
            CIFAR,
        );
        let f = forward(&m, CIFAR, 2);
        assert_eq!(f.logits.dims(), [2, 100]);
        assert_eq!(
            stage_widths(&f),
            vec![vec![4 * 1024; 3], vec![8 * 256; 3], vec![16 * 64; 3]]
        );
        let t = m.describe();
        let conv: Vec<_> = t
            .weights()
            .filter(|p| p.weight_kind() == Some(WeightKind::Conv))
            .collect();
        // stem + 9 blocks × 2 convs + 2 shortcut convs
        assert_eq!(conv.len(), 21);
        assert_eq!(conv[0].positions, 1024);
        let last_stage = conv
            .iter()
            .find(|p| p.path.starts_with("stages.2.0.conv1"))
            .unwrap();
        assert_eq!(last_stage.positions, 64);
        assert!(t.iter().any(|p| p.role == ParamRole::Norm));
        assert!(
            t.iter().filter(|p| p.role == ParamRole::Buffer).count() >= 2,
            "running statistics are buffers"
        );
        assert!(
            t.iter().all(|p| p.role != ParamRole::Other),
            "{:?}",
            t.iter()
                .filter(|p| p.role == ParamRole::Other)
                .map(|p| &p.path)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn seeded_initialisation_is_reproducible() {
        let a = build(json!({"name": "mlp-300-100"}), MNIST);
        let b = build(json!({"name": "mlp-300-100"}), MNIST);
        let ids_a: Vec<_> = a.describe().iter().map(|p| p.id).collect();
        let ids_b: Vec<_> = b.describe().iter().map(|p| p.id).collect();
        let va = sparselab_core::param::host_values(&a, &ids_a);
        let vb = sparselab_core::param::host_values(&b, &ids_b);
        assert_eq!(va, vb);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(
            registry()
                .build(&json!({"name": "resnet-cifar", "depth": 21}))
                .is_err()
        );
        assert!(
            registry()
                .build(&json!({"name": "mlp-300-100", "hidden": [0]}))
                .is_err()
        );
        let err = registry().build(&json!({"name": "vgg"})).err().unwrap();
        assert!(err.message.contains("mlp-300-100") && err.message.contains("resnet-cifar"));
    }
}
