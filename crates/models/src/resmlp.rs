//! `resmlp`: a residual MLP (SPEC.md §4): a linear stem `input → width`, `depth` equal-width
//! residual blocks `h ← relu(h + W₂·relu(W₁·h))`, and a linear classifier. All blocks form one
//! stage (no down-sampling), which makes it the CPU-sized model for CKA between blocks.

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Validate};

/// Hyperparameters of [`ResMlp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResMlpConfig {
    /// Width of the stem and of every block.
    pub width: usize,
    /// Number of residual blocks.
    pub depth: usize,
}

impl Default for ResMlpConfig {
    fn default() -> Self {
        Self {
            width: 256,
            depth: 4,
        }
    }
}

impl Validate for ResMlpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.width == 0 {
            return Err(ConfigError::out_of_range("width", 0, "width >= 1"));
        }
        if self.depth == 0 {
            return Err(ConfigError::out_of_range("depth", 0, "depth >= 1"));
        }
        Ok(())
    }
}

/// One residual block `h ↦ relu(h + fc2(relu(fc1(h))))`.
#[derive(Module, Debug)]
pub struct ResMlpBlock {
    fc1: Linear,
    fc2: Linear,
}

/// Residual MLP.
#[derive(Module, Debug)]
pub struct ResMlp {
    stem: Linear,
    blocks: Vec<ResMlpBlock>,
    head: Linear,
}

impl Buildable for ResMlp {
    type Config = ResMlpConfig;
    const NAME: &'static str = "resmlp";
    const SUMMARY: &'static str =
        "residual MLP: linear stem, depth × equal-width residual blocks, one stage (SPEC §4)";

    fn init(
        config: &ResMlpConfig,
        input: InputShape,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let w = config.width;
        Ok(ResMlp {
            stem: LinearConfig::new(input.numel(), w).init(device),
            blocks: (0..config.depth)
                .map(|_| ResMlpBlock {
                    fc1: LinearConfig::new(w, w).init(device),
                    fc2: LinearConfig::new(w, w).init(device),
                })
                .collect(),
            head: LinearConfig::new(w, input.classes).init(device),
        })
    }
}

impl Architecture for ResMlp {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        let mut h = relu(self.stem.forward(x.flatten(1, 3)));
        let mut stage = Vec::new();
        for block in &self.blocks {
            h = relu(h.clone() + block.fc2.forward(relu(block.fc1.forward(h))));
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
