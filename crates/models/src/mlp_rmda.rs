//! `mlp-rmda`: the fully connected network of RMDA's authors' Fashion-MNIST experiments (Huang &
//! Lee 2022; SPEC.md §1.4, §4): `784 → 512 → 256 → 128 → 64 → 32 → 16 → 10` with ReLU. Its
//! widths are the paper's and not configurable (a different stack is `mlp-300-100` with
//! `hidden = [...]`); all hidden layers form one stage for feature taps. Group-lasso groups are
//! its rows, as for every linear layer.

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use crate::mlp::{forward_layers, init_layers};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Validate};

/// The hidden widths of the authors' MLP.
pub const HIDDEN: [usize; 6] = [512, 256, 128, 64, 32, 16];

/// [`RmdaMlp`] has no hyperparameters: its shape is the paper's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmdaMlpConfig {}

impl Validate for RmdaMlpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The RMDA paper's seven-layer perceptron.
#[derive(Module, Debug)]
pub struct RmdaMlp {
    hidden: Vec<Linear>,
    head: Linear,
}

impl Buildable for RmdaMlp {
    type Config = RmdaMlpConfig;
    const NAME: &'static str = "mlp-rmda";
    const SUMMARY: &'static str =
        "RMDA's MLP: fully connected input→512→256→128→64→32→16→classes, ReLU (SPEC §1.4)";

    fn init(_: &RmdaMlpConfig, input: InputShape, device: &Device) -> Result<Self, ConfigError> {
        let (hidden, head) = init_layers(&HIDDEN, input, device);
        Ok(RmdaMlp { hidden, head })
    }
}

impl Architecture for RmdaMlp {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        forward_layers(&self.hidden, &[], &self.head, x, taps)
    }

    fn classifier(&self) -> &'static str {
        "head"
    }

    fn conv_positions(&self, _layer: &str) -> usize {
        1
    }
}
