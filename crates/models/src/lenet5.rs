//! `lenet5`: LeNet-5 (SPEC.md §4): conv 1→6 5×5 pad 2, max-pool 2, conv 6→16 5×5, max-pool 2,
//! fully connected 400→120→84→classes, ReLU. The flattened size follows the input (400 for
//! 28×28). `channels = [c1, c2]` widens the two convs (default `[6, 16]`, the original): the
//! structured modes of the reweighted ℓ1 (SPEC §1.1) need convs with more than a handful of
//! kernels and filters to remove. Stages for feature taps: each conv block (they are separated by down-sampling) and the
//! fully connected hidden layers. `batch_norm = true` puts a BatchNorm after each of conv1,
//! conv2, fc1 and fc2 (before the ReLU): the layers whose rows LpSGD keeps on a sphere then have
//! a following norm layer to carry their scale (SPEC §1.2), and CKA-SR's features are normalised
//! as its analysis assumes (SPEC §1.3).

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use crate::flex_kernels::{conv2d, max_pool};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Validate};

/// Hyperparameters of [`LeNet5`]: the conv widths and optional BatchNorm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeNet5Config {
    /// Output channels of conv1 and conv2 (default `[6, 16]`, the original LeNet-5).
    pub channels: [usize; 2],
    /// A BatchNorm after conv1, conv2, fc1 and fc2 (default: none, the original LeNet-5).
    pub batch_norm: bool,
}

impl Default for LeNet5Config {
    fn default() -> Self {
        Self {
            channels: [6, 16],
            batch_norm: false,
        }
    }
}

impl Validate for LeNet5Config {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.channels.iter().position(|&c| c == 0) {
            Some(i) => Err(ConfigError::new(
                format!("channels[{i}]"),
                "a conv needs at least 1 output channel",
            )),
            None => Ok(()),
        }
    }
}

/// LeNet-5.
#[derive(Module, Debug)]
pub struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    head: Linear,
    /// The BatchNorms after conv1, conv2, fc1 and fc2, or none.
    norms: Vec<BatchNorm>,
    /// `H_out·W_out` of conv1 and conv2.
    #[module(skip)]
    positions: [usize; 2],
}

impl Buildable for LeNet5 {
    type Config = LeNet5Config;
    const NAME: &'static str = "lenet5";
    const SUMMARY: &'static str =
        "LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, fc 120-84 (SPEC §4)";

    fn init(
        config: &LeNet5Config,
        input: InputShape,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        // conv1 keeps H×W (pad 2), pooling halves, conv2 (valid 5×5) removes 4, pooling halves.
        let (h1, w1) = (input.height, input.width);
        let (h2, w2) = ((h1 / 2).saturating_sub(4), (w1 / 2).saturating_sub(4));
        if h2 < 2 || w2 < 2 {
            return Err(ConfigError::new(
                "name",
                format!("lenet5 needs inputs of at least 12×12, got {h1}×{w1}"),
            ));
        }
        let [c1, c2] = config.channels;
        let flat = c2 * (h2 / 2) * (w2 / 2);
        let norms = if config.batch_norm {
            [c1, c2, 120, 84]
                .map(|features| BatchNormConfig::new(features).init(device))
                .into()
        } else {
            Vec::new()
        };
        Ok(LeNet5 {
            conv1: Conv2dConfig::new([input.channels, c1], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([c1, c2], [5, 5]).init(device),
            fc1: LinearConfig::new(flat, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            head: LinearConfig::new(84, input.classes).init(device),
            norms,
            positions: [h1 * w1, h2 * w2],
        })
    }
}

impl LeNet5 {
    /// The `i`-th BatchNorm applied to `x`, or `x` without them.
    fn norm<const D: usize>(&self, i: usize, x: Tensor<D>) -> Tensor<D> {
        match self.norms.get(i) {
            Some(bn) => bn.forward(x),
            None => x,
        }
    }
}

impl Architecture for LeNet5 {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        let c1 = max_pool(relu(self.norm(0, conv2d(&self.conv1, x))), 2);
        let c2 = max_pool(relu(self.norm(1, conv2d(&self.conv2, c1.clone()))), 2);
        let f1 = relu(self.norm(2, self.fc1.forward(c2.clone().flatten(1, 3))));
        let f2 = relu(self.norm(3, self.fc2.forward(f1.clone())));
        let features = if taps {
            vec![
                vec![c1.flatten(1, 3)],
                vec![c2.flatten(1, 3)],
                vec![f1, f2.clone()],
            ]
        } else {
            Vec::new()
        };
        Forward {
            logits: self.head.forward(f2),
            features,
        }
    }

    fn classifier(&self) -> &'static str {
        "head"
    }

    fn conv_positions(&self, layer: &str) -> usize {
        match layer {
            "conv1" => self.positions[0],
            "conv2" => self.positions[1],
            _ => 1,
        }
    }
}
