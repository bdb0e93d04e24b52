//! `mlp-300-100`: LeNet-300-100 (LeCun et al. 1998; SPEC.md §4), a fully connected network
//! `input → 300 → 100 → classes` with ReLU. The hidden sizes are configurable (`hidden = []` is
//! multinomial logistic regression); all hidden layers form one stage for feature taps.
//! `batch_norm = true` puts a BatchNorm after each hidden layer (before the ReLU): a deep MLP at
//! high sparsity then still passes a signal forward, LpSGD's sphere-constrained rows have a
//! norm layer to carry their scale (SPEC §1.2), and CKA-SR's features are normalised as its
//! analysis assumes (SPEC §1.3).

use crate::architecture::{Architecture, Buildable, Forward, InputShape};
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
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
    /// A BatchNorm after every hidden layer (default: none, the original LeNet-300-100).
    pub batch_norm: bool,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![300, 100],
            batch_norm: false,
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
    /// The BatchNorms after the hidden layers, or none.
    norms: Vec<BatchNorm>,
}

impl Buildable for Mlp {
    type Config = MlpConfig;
    const NAME: &'static str = "mlp-300-100";
    const SUMMARY: &'static str =
        "LeNet-300-100: fully connected input→300→100→classes, ReLU (SPEC §4)";

    fn init(config: &MlpConfig, input: InputShape, device: &Device) -> Result<Self, ConfigError> {
        let (hidden, head) = init_layers(&config.hidden, input, device);
        let norms = if config.batch_norm {
            let norm = |&width: &usize| BatchNormConfig::new(width).init(device);
            config.hidden.iter().map(norm).collect()
        } else {
            Vec::new()
        };
        Ok(Mlp {
            hidden,
            head,
            norms,
        })
    }
}

/// The linear layers `input → widths[0] → … → widths[k-1] → classes`: the hidden ones and the
/// classifier (burn's default initialisation).
pub(crate) fn init_layers(
    widths: &[usize],
    input: InputShape,
    device: &Device,
) -> (Vec<Linear>, Linear) {
    let mut d_in = input.numel();
    let hidden = widths
        .iter()
        .map(|&width| {
            let layer = LinearConfig::new(d_in, width).init(device);
            d_in = width;
            layer
        })
        .collect();
    (hidden, LinearConfig::new(d_in, input.classes).init(device))
}

/// `head(relu(norm₁(… relu(norm₀(hidden₀(x))))))` on flattened images, `normᵢ` the i-th of
/// `norms` or the identity when there are none; the hidden outputs form one stage of feature
/// taps.
pub(crate) fn forward_layers(
    hidden: &[Linear],
    norms: &[BatchNorm],
    head: &Linear,
    x: Tensor<4>,
    taps: bool,
) -> Forward {
    let mut h: Tensor<2> = x.flatten(1, 3);
    let mut stage = Vec::new();
    for (i, layer) in hidden.iter().enumerate() {
        let z = layer.forward(h);
        h = relu(match norms.get(i) {
            Some(bn) => bn.forward(z),
            None => z,
        });
        if taps {
            stage.push(h.clone());
        }
    }
    Forward {
        logits: head.forward(h),
        features: if taps { vec![stage] } else { Vec::new() },
    }
}

impl Architecture for Mlp {
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward {
        forward_layers(&self.hidden, &self.norms, &self.head, x, taps)
    }

    fn classifier(&self) -> &'static str {
        "head"
    }

    fn conv_positions(&self, _layer: &str) -> usize {
        1
    }
}
