//! `l1`: the lasso penalty `ψ(w) = ‖w‖₁`, prox `S_{λθ}` (SPEC.md §1.1, §1.4).

use crate::prox::soft_threshold;
use crate::regularizer::Regularizer;
use crate::threshold::{Lazy, Reciprocal, Threshold};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_non_negative;
use sparselab_core::{ConfigError, FromConfig, Validate, Weight};
use std::sync::Arc;

/// Hyperparameters of [`L1`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// Strength λ: the sparsity knob (swept in experiments).
    pub lambda: f64,
}

impl Default for L1Config {
    fn default() -> Self {
        Self { lambda: 1e-4 }
    }
}

impl Validate for L1Config {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("lambda", self.lambda)
    }
}

/// The ℓ1 penalty `λ‖w‖₁`; `prox_{λθ‖·‖₁}(z) = S_{λθ}(z)` elementwise.
#[derive(Clone, Debug)]
pub struct L1 {
    config: L1Config,
}

impl L1 {
    /// An ℓ1 penalty of strength `lambda`.
    pub fn new(lambda: f64) -> Self {
        Self {
            config: L1Config { lambda },
        }
    }
}

impl FromConfig<dyn Regularizer> for L1 {
    type Config = L1Config;
    const NAME: &'static str = "l1";
    const SUMMARY: &'static str = "lasso penalty λ‖w‖₁, elementwise soft-thresholding (SPEC §1.1)";

    fn from_config(config: L1Config) -> Box<dyn Regularizer> {
        Box::new(Self { config })
    }
}

impl Regularizer for L1 {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn strength(&self) -> f64 {
        self.config.lambda
    }

    fn penalty(&self, w: &Weight) -> f64 {
        w.value.clone().abs().sum().into_scalar::<f64>()
    }

    fn prox(&self, z: Weight, theta: &Threshold) -> Weight {
        let theta = theta.clone().scale(self.config.lambda);
        z.map_value(|z| soft_threshold(z, &theta))
    }

    fn has_diagonal_prox(&self) -> bool {
        true
    }

    /// Separable: `x_i = S_{λθ/d_i}(z_i)`.
    fn prox_diagonal(&self, z: Weight, d: Tensor<4>, theta: f64) -> Option<Weight> {
        let per_element = Lazy::mapped(d, Arc::new(Reciprocal));
        let theta = Threshold::Lazy(per_element).scale(self.config.lambda * theta);
        Some(z.map_value(|z| soft_threshold(z, &theta)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    fn weight(values: &[f32]) -> Weight {
        Weight::from_tensor(Tensor::<2>::from_data(
            TensorData::new(values.to_vec(), [2, values.len() / 2]),
            &Device::flex(),
        ))
    }

    #[test]
    fn prox_thresholds_at_lambda_times_theta() {
        let l1 = L1::new(0.5);
        let out = l1.prox(weight(&[1.0, -0.2, 0.4, -2.0]), &Threshold::Scalar(2.0));
        let out: Vec<f32> = out
            .into_tensor::<2>()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        // λθ = 1
        assert_eq!(out, vec![0.0, 0.0, 0.0, -1.0]);
    }

    #[test]
    fn penalty_is_the_l1_norm() {
        assert_eq!(L1::new(3.0).penalty(&weight(&[1.0, -2.0, 0.5, 0.0])), 3.5);
    }
}
