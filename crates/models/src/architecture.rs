//! What every model provides ([`Architecture`]) and how a typed config builds one
//! ([`Buildable`]).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sparselab_core::{ConfigError, ParamTable, Validate};

/// Shape of one input sample and number of classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InputShape {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
}

impl InputShape {
    /// `C·H·W`.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Output of a forward pass.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Logits `[N, classes]`.
    pub logits: Tensor<2>,
    /// Block outputs flattened to `[N, C·H·W]`, grouped by stage (blocks between two
    /// down-samplings); empty unless requested.
    pub features: Vec<Vec<Tensor<2>>>,
}

/// What every model provides.
pub trait Architecture: Module {
    /// Logits for images `x` (`[N, C, H, W]`), plus block features when `taps` is set.
    fn forward(&self, x: Tensor<4>, taps: bool) -> Forward;

    /// Path of the classifier layer (e.g. `fc3`).
    fn classifier(&self) -> &'static str;

    /// Output positions `H_out·W_out` of conv layer `layer` (1 for non-conv layers).
    fn conv_positions(&self, layer: &str) -> usize;

    /// The model's parameters, described.
    fn describe(&self) -> ParamTable {
        ParamTable::describe(self, self.classifier(), |layer| self.conv_positions(layer))
    }
}

/// An architecture with a typed config: one line of the `models!` list in `registry.rs`
/// registers it.
pub trait Buildable: Sized + 'static {
    /// Hyperparameters (`#[serde(default, deny_unknown_fields)]`).
    type Config: Default + Serialize + DeserializeOwned + Validate + Clone + Send + Sync + 'static;
    /// Registered name.
    const NAME: &'static str;
    /// One line for `cargo xtask list`.
    const SUMMARY: &'static str;
    /// Initialise, or explain why the input does not fit the architecture.
    fn init(config: &Self::Config, input: InputShape, device: &Device)
    -> Result<Self, ConfigError>;
}
