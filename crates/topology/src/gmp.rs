//! `gmp`: gradual magnitude pruning (Zhu & Gupta 2017; SPEC.md §2).
//!
//! Every `Δt` steps between `t₀` and `t_end = t₀ + nΔt` the smallest-magnitude weights are pruned
//! to the cubic schedule
//!
//! ```text
//! s_t = s_f + (s_0 − s_f)·(1 − (t − t₀)/(t_end − t₀))³
//! ```
//!
//! ranked over all weight tensors together (`global`) or within each tensor (`layer`). Pruned
//! weights never return (their gradient is masked, so their magnitude stays 0). `t₀` and `t_end`
//! are given as fractions of training (`start`, `end`) so one config serves any run length;
//! after `t_end` the mask is frozen and the network fine-tunes at `s_f`.

use crate::select::{pruned_count, top_k};
use crate::topology::{HostWeight, Mask, Topology, TopologyContext};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_half_open};
use sparselab_core::{ConfigError, FromConfig, Validate};

/// Whether magnitudes are ranked across all layers or within each layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One threshold for the whole network (layers end at different sparsities).
    Global,
    /// Every layer pruned to `s_t`.
    Layer,
}

/// Hyperparameters of [`Gmp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmpConfig {
    /// Final sparsity `s_f`.
    pub sparsity: f64,
    /// Initial sparsity `s_0` (applied by magnitude at initialisation when > 0).
    pub initial: f64,
    /// Start of pruning `t₀` as a fraction of training.
    pub start: f64,
    /// End of pruning `t_end` as a fraction of training.
    pub end: f64,
    /// Steps between mask updates `Δt`.
    pub every: usize,
    /// Ranking scope.
    pub scope: Scope,
}

impl Default for GmpConfig {
    fn default() -> Self {
        Self {
            sparsity: 0.9,
            initial: 0.0,
            start: 0.1,
            end: 0.7,
            every: 50,
            scope: Scope::Global,
        }
    }
}

impl Validate for GmpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("sparsity", self.sparsity, 0.0, 1.0)?;
        check_closed("initial", self.initial, 0.0, self.sparsity)?;
        check_closed("start", self.start, 0.0, 1.0)?;
        check_closed("end", self.end, self.start, 1.0)?;
        if self.every == 0 {
            return Err(ConfigError::out_of_range("every", 0, "every >= 1"));
        }
        Ok(())
    }
}

/// Gradual magnitude pruning.
#[derive(Clone, Debug)]
pub struct Gmp {
    config: GmpConfig,
    /// `(t₀, t_end)` in steps, known once the run length is.
    window: (usize, usize),
}

impl Gmp {
    /// GMP with `config` (the schedule is placed on the run by [`Topology::init`]).
    pub fn new(config: GmpConfig) -> Self {
        Self {
            config,
            window: (0, 0),
        }
    }

    /// Target sparsity after step `t`: the cubic schedule, clamped to `[s_0, s_f]`.
    pub fn sparsity_at(&self, t: usize) -> f64 {
        let (t0, t_end) = self.window;
        let GmpConfig {
            sparsity: sf,
            initial: s0,
            ..
        } = self.config;
        if t <= t0 {
            return s0;
        }
        if t >= t_end {
            return sf;
        }
        let progress = (t - t0) as f64 / (t_end - t0) as f64;
        sf + (s0 - sf) * (1.0 - progress).powi(3)
    }

    fn prune(&self, weights: &[HostWeight<'_>], sparsity: f64) -> Vec<Mask> {
        let magnitudes =
            |w: &HostWeight<'_>| w.values.iter().map(|v| v.abs()).collect::<Vec<f32>>();
        match self.config.scope {
            Scope::Layer => weights
                .iter()
                .map(|w| Mask {
                    id: w.info.id,
                    keep: top_k(
                        &magnitudes(w),
                        w.values.len() - pruned_count(sparsity, w.values.len()),
                    ),
                })
                .collect(),
            Scope::Global => {
                let all: Vec<f32> = weights.iter().flat_map(magnitudes).collect();
                let mut keep =
                    top_k(&all, all.len() - pruned_count(sparsity, all.len())).into_iter();
                weights
                    .iter()
                    .map(|w| Mask {
                        id: w.info.id,
                        keep: keep.by_ref().take(w.values.len()).collect(),
                    })
                    .collect()
            }
        }
    }
}

impl FromConfig<dyn Topology> for Gmp {
    type Config = GmpConfig;
    const NAME: &'static str = "gmp";
    const SUMMARY: &'static str =
        "gradual magnitude pruning, cubic schedule, global or per-layer (SPEC §2)";

    fn from_config(config: GmpConfig) -> Box<dyn Topology> {
        Box::new(Gmp::new(config))
    }
}

impl Topology for Gmp {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>> {
        let at = |f: f64| (f * ctx.total_steps as f64).round() as usize;
        self.window = (at(self.config.start), at(self.config.end));
        (self.config.initial > 0.0).then(|| self.prune(weights, self.config.initial))
    }

    fn due(&self, step: usize) -> bool {
        let (t0, t_end) = self.window;
        step >= t0
            && step <= t_end
            && ((step - t0).is_multiple_of(self.config.every) || step == t_end)
    }

    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        _grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>> {
        Some(self.prune(weights, self.sparsity_at(step)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::{ParamInfo, WeightKind};

    fn info(n: usize) -> ParamInfo {
        ParamInfo::weight(WeightKind::Linear, vec![1, n])
    }

    fn gmp(scope: Scope) -> Gmp {
        let mut g = Gmp::new(GmpConfig {
            sparsity: 0.5,
            start: 0.0,
            end: 1.0,
            every: 10,
            scope,
            ..GmpConfig::default()
        });
        let ctx = TopologyContext {
            total_steps: 100,
            steps_per_epoch: 10,
            seed: 0,
        };
        assert!(g.init(&ctx, &[]).is_none());
        g
    }

    #[test]
    fn cubic_schedule_values() {
        let g = gmp(Scope::Global);
        assert_eq!(g.sparsity_at(0), 0.0);
        assert!((g.sparsity_at(50) - (0.5 - 0.5 * 0.125)).abs() < 1e-12);
        assert_eq!(g.sparsity_at(100), 0.5);
        assert_eq!(g.sparsity_at(150), 0.5);
        // Monotone non-decreasing.
        assert!((0..100).all(|t| g.sparsity_at(t) <= g.sparsity_at(t + 1)));
    }

    #[test]
    fn due_every_delta_t_inside_the_window() {
        let mut g = gmp(Scope::Global);
        g.window = (5, 37);
        let due: Vec<usize> = (0..60).filter(|&t| g.due(t)).collect();
        assert_eq!(due, vec![5, 15, 25, 35, 37]);
    }

    #[test]
    fn global_and_layer_scopes_rank_differently() {
        let (a, b) = (info(4), info(4));
        let va = [0.1f32, 0.2, 0.3, 0.4];
        let vb = [1.0f32, 2.0, -3.0, 4.0];
        let w = [
            HostWeight {
                info: &a,
                values: &va,
            },
            HostWeight {
                info: &b,
                values: &vb,
            },
        ];
        let global = gmp(Scope::Global).prune(&w, 0.5);
        assert_eq!(global[0].keep, vec![false; 4]);
        assert_eq!(global[1].keep, vec![true; 4]);
        let layer = gmp(Scope::Layer).prune(&w, 0.5);
        assert_eq!(layer[0].keep, vec![false, false, true, true]);
        assert_eq!(layer[1].keep, vec![false, false, true, true]);
    }
}
