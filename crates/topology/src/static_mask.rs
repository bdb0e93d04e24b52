//! `static`: a random mask drawn at initialisation and kept fixed (SPEC.md §2).
//!
//! Layer densities follow [`Distribution`] (uniform or ERK) for the global target sparsity; each
//! layer keeps exactly `n − ⌊(1 − density)·n⌋` uniformly random weights, drawn from the run's
//! `"topology"` random stream.

use crate::density::{Distribution, densities};
use crate::select::{pruned_count, random_k};
use crate::topology::{HostWeight, Mask, Topology, TopologyContext};
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_half_open;
use sparselab_core::rng::{ChaCha8Rng, stream};
use sparselab_core::{ConfigError, FromConfig, Validate};

/// Hyperparameters of [`StaticMask`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// Global sparsity.
    pub sparsity: f64,
    /// How densities are spread over layers.
    pub distribution: Distribution,
}

impl Default for StaticConfig {
    fn default() -> Self {
        Self {
            sparsity: 0.9,
            distribution: Distribution::Erk,
        }
    }
}

impl Validate for StaticConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("sparsity", self.sparsity, 0.0, 1.0)
    }
}

/// Static random sparsity.
#[derive(Clone, Debug)]
pub struct StaticMask {
    config: StaticConfig,
}

/// Random masks with the layer densities of `distribution` at global `sparsity`: each layer keeps
/// exactly `n − ⌊(1 − density)·n⌋` uniformly random weights (also the start of SET and RigL).
pub fn draw(
    weights: &[HostWeight<'_>],
    sparsity: f64,
    distribution: Distribution,
    rng: &mut ChaCha8Rng,
) -> Vec<Mask> {
    let infos: Vec<_> = weights.iter().map(|w| w.info).collect();
    weights
        .iter()
        .zip(densities(&infos, sparsity, distribution))
        .map(|(w, d)| {
            let n = w.values.len();
            Mask {
                id: w.info.id,
                keep: random_k(n, n - pruned_count(1.0 - d, n), rng),
            }
        })
        .collect()
}

impl FromConfig<dyn Topology> for StaticMask {
    type Config = StaticConfig;
    const NAME: &'static str = "static";
    const SUMMARY: &'static str =
        "random mask at init, uniform or ERK densities, kept fixed (SPEC §2)";

    fn from_config(config: StaticConfig) -> Box<dyn Topology> {
        Box::new(StaticMask { config })
    }
}

impl Topology for StaticMask {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn monotone(&self) -> bool {
        true
    }

    fn target_sparsity(&self) -> f64 {
        self.config.sparsity
    }

    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>> {
        let mut rng = stream(ctx.seed, "topology");
        Some(draw(
            weights,
            self.config.sparsity,
            self.config.distribution,
            &mut rng,
        ))
    }

    fn due(&self, _step: usize) -> bool {
        false
    }

    /// Nothing to resume: the masks never change after [`init`](Topology::init), which draws
    /// them again from the same stream.
    fn resume(
        &mut self,
        _masks: Option<Vec<Mask>>,
        _state: &serde_json::Value,
    ) -> Result<(), String> {
        Ok(())
    }

    fn update(
        &mut self,
        _step: usize,
        _weights: &[HostWeight<'_>],
        _grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::{ParamInfo, WeightKind};

    #[test]
    fn masks_meet_the_global_target_and_are_reproducible() {
        let infos: Vec<ParamInfo> = [(784, 300), (300, 100), (100, 10)]
            .iter()
            .map(|&(i, o)| ParamInfo::weight(WeightKind::Linear, vec![i, o]))
            .collect();
        let values: Vec<Vec<f32>> = infos.iter().map(|p| vec![1.0; p.numel()]).collect();
        let weights: Vec<HostWeight<'_>> = infos
            .iter()
            .zip(&values)
            .map(|(info, v)| HostWeight { info, values: v })
            .collect();
        let ctx = TopologyContext {
            total_steps: 10,
            steps_per_epoch: 1,
            seed: 7,
        };
        let draw = || {
            let mut t = StaticMask {
                config: StaticConfig {
                    sparsity: 0.9,
                    distribution: Distribution::Erk,
                },
            };
            t.init(&ctx, &weights).unwrap()
        };
        let masks = draw();
        let total: usize = masks.iter().map(|m| m.keep.len()).sum();
        let kept: usize = masks
            .iter()
            .map(|m| m.keep.iter().filter(|k| **k).count())
            .sum();
        let sparsity = 1.0 - kept as f64 / total as f64;
        assert!((sparsity - 0.9).abs() < 1e-3, "{sparsity}");
        assert!(masks[0].sparsity() > masks[2].sparsity());
        assert_eq!(masks, draw());
    }
}
