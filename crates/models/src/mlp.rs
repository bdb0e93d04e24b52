//! `mlp-300-100`: LeNet-300-100 (LeCun et al. 1998; SPEC.md §4), a fully connected network
//! `input → 300 → 100 → classes` with ReLU. The hidden sizes are configurable (`hidden = []` is
//! multinomial logistic regression); all hidden layers form one stage for feature taps.

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Validate};

/// Hyperparameters of [`Mlp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![300, 100],
        }
    }
}

impl Validate for MlpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.hidden.contains(&0) {
            return Err(ConfigError::new(
                "hidden",
                format!("{:?}: every hidden width must be >= 1", self.hidden),
            ));
        }
        Ok(())
    }
}

/// A multilayer perceptron.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    head: Linear,
}

impl Buildable for Mlp {
    type Config = MlpConfig;
    const NAME: &'static str = "mlp-300-100";
    const SUMMARY: &'static str =
        "LeNet-300-100: fully connected input→300→100→classes, ReLU (SPEC §4)";

    fn init(config: &MlpConfig, input: InputShape, device: &Device) -> Result<Self, ConfigError> {
        let mut d_in = input.numel();
        let hidden = config
            .hidden
            .iter()
            .map(|&width| {
                let layer = LinearConfig::new(d_in, width).init(device);
                d_in = width;
                layer
            })
            .collect();
        let head = LinearConfig::new(d_in, input.classes).init(device);
        Ok(Mlp { hidden, head })
    }
}

impl Architecture for Mlp {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        let mut h: Tensor<2> = x.flatten(1, 3);
        let mut stage = Vec::new();
        for layer in &self.hidden {
            h = relu(layer.forward(h));
            if taps {
                stage.push(h.clone());
            }
        }
        Forward {
            logits: self.head.forward(h),
            features: if taps { vec![stage] } else { Vec::new() },
        }
    }

    fn classifier(&self) -> &'static str {
        "head"
    }

    fn conv_positions(&self, _layer: &str) -> usize {
        1
    }
}
