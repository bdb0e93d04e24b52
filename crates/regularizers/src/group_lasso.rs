//! `group-lasso`: `ψ(W) = Σ_g √|g|·‖W_g‖₂` over input units (SPEC.md §1.4).
//!
//! Groups: a conv weight `[out, in, kh, kw]` has one group per input channel `W[:, c, :, :]`
//! (size `out·kh·kw`); a linear weight has one group per input neuron (size `out`). Every weight
//! tensor is regularised, the first layer and the classifier included. The prox is group
//! soft-thresholding `W_g ← max(0, 1 − λθ√|g|/‖W_g‖)·W_g`; in a diagonal metric (ProxSSI) it is
//! solved by Newton's method on the secular equation ([`group_prox_diagonal`]).

use crate::prox::{Threshold, group_norms, group_prox_diagonal, group_soft_threshold};
use crate::regularizer::Regularizer;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_non_negative;
use sparselab_core::{ConfigError, FromConfig, Validate, Weight};

/// Newton steps of the weighted prox. From the lower end of the bracket Newton's iterates rise
/// monotonically to the root; the optimality test in `prox` checks residuals below 1e-4 with
/// this many steps.
pub const NEWTON_STEPS: usize = 5;

/// Hyperparameters of [`GroupLasso`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupLassoConfig {
    /// Strength λ (swept in experiments).
    pub lambda: f64,
}

impl Default for GroupLassoConfig {
    fn default() -> Self {
        Self { lambda: 1e-3 }
    }
}

impl Validate for GroupLassoConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("lambda", self.lambda)
    }
}

/// The group lasso over input units.
#[derive(Clone, Debug)]
pub struct GroupLasso {
    config: GroupLassoConfig,
}

impl GroupLasso {
    /// A group lasso of strength `lambda`.
    pub fn new(lambda: f64) -> Self {
        Self {
            config: GroupLassoConfig { lambda },
        }
    }
}

impl FromConfig<dyn Regularizer> for GroupLasso {
    type Config = GroupLassoConfig;
    const NAME: &'static str = "group-lasso";
    const SUMMARY: &'static str =
        "group lasso Σ√|g|‖W_g‖ over input channels / neurons (SPEC §1.4)";

    fn from_config(config: GroupLassoConfig) -> Box<dyn Regularizer> {
        Box::new(Self { config })
    }
}

impl Regularizer for GroupLasso {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn strength(&self) -> f64 {
        self.config.lambda
    }

    fn penalty(&self, w: &Weight) -> f64 {
        let (norms, size) = group_norms(&w.value, w.layout);
        (size as f64).sqrt() * norms.sum().into_scalar::<f64>()
    }

    fn prox(&self, z: Weight, theta: &Threshold) -> Weight {
        let (layout, theta) = (z.layout, theta.clone().scale(self.config.lambda));
        z.map_value(|z| group_soft_threshold(z, layout, &theta))
    }

    fn has_diagonal_prox(&self) -> bool {
        true
    }

    fn prox_diagonal(&self, z: Weight, d: Tensor<4>, theta: f64) -> Option<Weight> {
        let (layout, theta) = (z.layout, self.config.lambda * theta);
        Some(z.map_value(|z| group_prox_diagonal(z, d, layout, theta, NEWTON_STEPS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn penalty_hand_computed() {
        // Linear [d_in = 2, d_out = 2]: groups (3, 4) and (0, 0): √2·5.
        let w = Weight::from_tensor(Tensor::<2>::from_data(
            TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]),
            &Device::flex(),
        ));
        assert!((GroupLasso::new(1.0).penalty(&w) - 2f64.sqrt() * 5.0).abs() < 1e-5);
    }

    #[test]
    fn prox_scales_threshold_by_lambda() {
        let w = Weight::from_tensor(Tensor::<2>::from_data(
            TensorData::new(vec![3.0f32, 4.0], [1, 2]),
            &Device::flex(),
        ));
        // One group of size 2, norm 5: λθ√2 = 5 exactly removes it.
        let out = GroupLasso::new(0.5).prox(w, &Threshold::Scalar(10.0 / 2f64.sqrt()));
        let v: Vec<f32> = out.value.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(v, vec![0.0, 0.0]);
    }
}
