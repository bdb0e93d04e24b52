//! `feature-l2`: a mean-square penalty on block features,
//!
//! ```text
//! L = β · Σ_stages Σ_blocks mean_{n,j} X_{nj}²
//! ```
//!
//! with `X` a block's output flattened to `[N, C·H·W]`. Not a method of SPEC.md: the simplest
//! loss term on features, which proves the loss-term seam (features requested only when due,
//! gradients through autodiff into every layer, values recorded per epoch) before CKA-SR (§1.3)
//! uses it.

use crate::loss_term::{LossTerm, StageFeatures};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_non_negative;
use sparselab_core::{ConfigError, FromConfig, Validate};

/// Hyperparameters of [`FeatureL2`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureL2Config {
    /// Strength β.
    pub beta: f64,
    /// Steps between evaluations.
    pub every: usize,
}

impl Default for FeatureL2Config {
    fn default() -> Self {
        Self {
            beta: 1e-3,
            every: 1,
        }
    }
}

impl Validate for FeatureL2Config {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("beta", self.beta)?;
        if self.every == 0 {
            return Err(ConfigError::out_of_range("every", 0, "every >= 1"));
        }
        Ok(())
    }
}

/// Mean-square feature penalty.
#[derive(Clone, Debug)]
pub struct FeatureL2 {
    config: FeatureL2Config,
}

impl FromConfig<dyn LossTerm> for FeatureL2 {
    type Config = FeatureL2Config;
    const NAME: &'static str = "feature-l2";
    const SUMMARY: &'static str =
        "β·Σ mean(X²) over block features: the simplest feature term (proves the seam)";

    fn from_config(config: FeatureL2Config) -> Box<dyn LossTerm> {
        Box::new(FeatureL2 { config })
    }
}

impl LossTerm for FeatureL2 {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn every(&self) -> usize {
        self.config.every
    }

    fn loss(&self, features: &StageFeatures) -> Option<Tensor<1>> {
        features
            .iter()
            .flatten()
            .map(|x| x.clone().powf_scalar(2.0).mean())
            .reduce(|a, b| a + b)
            .map(|sum| sum.mul_scalar(self.config.beta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn hand_computed_value() {
        let d = Device::flex();
        let x = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [2, 2]), &d);
        let term = FeatureL2 {
            config: FeatureL2Config {
                beta: 0.5,
                every: 1,
            },
        };
        // mean([1,4,9,16]) = 7.5, mean([0,0,0,4]) = 1; β·8.5 = 4.25
        let features = vec![
            vec![x(vec![1.0, -2.0, 3.0, 4.0])],
            vec![x(vec![0.0, 0.0, 0.0, 2.0])],
        ];
        let v = term.loss(&features).unwrap().into_scalar::<f64>();
        assert!((v - 4.25).abs() < 1e-6, "{v}");
        assert!(term.loss(&[]).is_none());
    }

    #[test]
    fn due_on_steps_one_plus_multiples_of_every() {
        let term = FeatureL2 {
            config: FeatureL2Config {
                beta: 1.0,
                every: 5,
            },
        };
        let due: Vec<usize> = (1..=12).filter(|&s| term.due(s)).collect();
        assert_eq!(due, vec![1, 6, 11]);
    }
}
