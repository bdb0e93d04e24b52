//! `resnet-cifar`: the CIFAR ResNet family of He et al. 2016 (ResNet-20/32/44/56/110; SPEC.md §4).
//!
//! A 3×3 stem conv (width w) with batch norm, three stages of `n = (depth − 2)/6` basic blocks
//! (or the per-stage counts `blocks`, e.g. `[2, 3, 3]` for the Lp-sphere paper's Fashion-MNIST
//! model, SPEC §1.2)
//! (`conv3×3-BN-ReLU-conv3×3-BN` plus shortcut, then ReLU) at widths w, 2w, 4w, the first block of
//! stages 2 and 3 down-sampling by stride 2 with a 1×1 conv + BN shortcut (option B), global
//! average pooling and a linear classifier. Convs have no bias (batch norm follows). Feature taps:
//! every block's output, grouped by stage.

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use crate::flex_kernels::conv2d;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::{ConfigError, Validate};

/// Hyperparameters of [`ResNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResNetConfig {
    /// Depth `6n + 2` (20, 32, 44, 56, 110, ...).
    pub depth: usize,
    /// Width of the first stage (16 in the paper).
    pub width: usize,
    /// Blocks per stage, three counts (empty: `(depth − 2)/6` each; when given, `depth` is
    /// ignored).
    pub blocks: Vec<usize>,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        Self {
            depth: 20,
            width: 16,
            blocks: Vec::new(),
        }
    }
}

impl ResNetConfig {
    /// Blocks in each of the three stages.
    pub fn stage_blocks(&self) -> [usize; 3] {
        match self.blocks.as_slice() {
            [a, b, c] => [*a, *b, *c],
            _ => [(self.depth - 2) / 6; 3],
        }
    }
}

impl Validate for ResNetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.blocks.is_empty() {
            if self.blocks.len() != 3 || self.blocks.contains(&0) {
                return Err(ConfigError::out_of_range(
                    "blocks",
                    format!("{:?}", self.blocks),
                    "three block counts >= 1, one per stage (e.g. [2, 3, 3]), or [] to use depth",
                ));
            }
        } else if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(ConfigError::out_of_range(
                "depth",
                self.depth,
                "depth = 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)",
            ));
        }
        if self.width == 0 {
            return Err(ConfigError::out_of_range("width", 0, "width >= 1"));
        }
        Ok(())
    }
}

fn conv3x3(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// The 1×1 conv + batch-norm shortcut of a down-sampling block.
#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    bn: BatchNorm,
}

/// A basic residual block.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<Shortcut>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || c_in != c_out).then(|| Shortcut {
            conv: Conv2dConfig::new([c_in, c_out], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(c_out).init(device),
        });
        Self {
            conv1: conv3x3(c_in, c_out, stride, device),
            bn1: BatchNormConfig::new(c_out).init(device),
            conv2: conv3x3(c_out, c_out, 1, device),
            bn2: BatchNormConfig::new(c_out).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(conv2d(&self.conv1, x.clone())));
        let out = self.bn2.forward(conv2d(&self.conv2, out));
        let skip = match &self.shortcut {
            Some(s) => s.bn.forward(conv2d(&s.conv, x)),
            None => x,
        };
        relu(out + skip)
    }
}

/// CIFAR ResNet.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    bn: BatchNorm,
    stages: Vec<Vec<BasicBlock>>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
    /// `H_out·W_out` of the stem and of each stage.
    #[module(skip)]
    positions: Vec<usize>,
}

impl Buildable for ResNet {
    type Config = ResNetConfig;
    const NAME: &'static str = "resnet-cifar";
    const SUMMARY: &'static str =
        "CIFAR ResNet-(6n+2): 3 stages of basic blocks, widths w/2w/4w (SPEC §4)";

    fn init(
        config: &ResNetConfig,
        input: InputShape,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let blocks = config.stage_blocks();
        let widths = [config.width, 2 * config.width, 4 * config.width];
        let (h, w) = (input.height, input.width);
        if h < 4 || w < 4 {
            return Err(ConfigError::new(
                "name",
                format!("resnet-cifar needs inputs of at least 4×4, got {h}×{w}"),
            ));
        }
        // Stride-2 3×3 conv with padding 1: out = ⌈in/2⌉.
        let mut positions = vec![h * w];
        let (mut sh, mut sw) = (h, w);
        let mut c_in = config.width;
        let stages = widths
            .iter()
            .enumerate()
            .map(|(s, &c_out)| {
                let stride = if s == 0 { 1 } else { 2 };
                if stride == 2 {
                    (sh, sw) = (sh.div_ceil(2), sw.div_ceil(2));
                }
                positions.push(sh * sw);
                (0..blocks[s])
                    .map(|b| {
                        let block =
                            BasicBlock::new(c_in, c_out, if b == 0 { stride } else { 1 }, device);
                        c_in = c_out;
                        block
                    })
                    .collect()
            })
            .collect();
        Ok(ResNet {
            stem: conv3x3(input.channels, config.width, 1, device),
            bn: BatchNormConfig::new(config.width).init(device),
            stages,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(widths[2], input.classes).init(device),
            positions,
        })
    }
}

impl Architecture for ResNet {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        let mut h = relu(self.bn.forward(conv2d(&self.stem, x)));
        let mut features = Vec::new();
        for stage in &self.stages {
            let mut taps_of_stage = Vec::new();
            for block in stage {
                h = block.forward(h);
                if taps {
                    taps_of_stage.push(h.clone().flatten(1, 3));
                }
            }
            if taps {
                features.push(taps_of_stage);
            }
        }
        let pooled: Tensor<2> = self.pool.forward(h).flatten(1, 3);
        Forward {
            logits: self.head.forward(pooled),
            features,
        }
    }

    fn classifier(&self) -> &'static str {
        "head"
    }

    fn conv_positions(&self, layer: &str) -> usize {
        match layer.split('.').collect::<Vec<_>>().as_slice() {
            ["stem"] => self.positions[0],
            ["stages", s, ..] => s.parse::<usize>().map_or(1, |s| self.positions[s + 1]),
            _ => 1,
        }
    }
}
