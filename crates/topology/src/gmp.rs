//! `gmp`: gradual magnitude pruning (Zhu & Gupta 2017; SPEC.md §2).
//!
//! Every `Δt` steps between `t₀` and `t_end = t₀ + nΔt` the smallest-magnitude weights are pruned
//! to the cubic schedule
//!
//! ```text
//! s_t = s_f + (s_0 − s_f)·(1 − (t − t₀)/(t_end − t₀))³
//! ```
//!
//! ranked over all weight tensors together (`global`) or within each tensor (`layer`). Ranking
//! uses the masked values `|w ⊙ m|` (SPEC §2) and only ever prunes among the weights still kept,
//! so pruned weights never return, whatever the optimiser does under the mask (dual-averaging
//! methods keep a dual iterate there). `t₀` and `t_end` are given as fractions of training
//! (`start`, `end`) so one config serves any run length; after `t_end` the mask is frozen and the
//! network fine-tunes at `s_f`. `start == end` is one-shot pruning at that point (at
//! initialisation when both are 0).

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
    /// The masks of the last prune (`None`: dense so far).
    current: Option<Vec<Mask>>,
}

impl Gmp {
    /// GMP with `config` (the schedule is placed on the run by [`Topology::init`]).
    pub fn new(config: GmpConfig) -> Self {
        Self {
            config,
            window: (0, 0),
            current: None,
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
        if t >= t_end {
            return sf;
        }
        if t <= t0 {
            return s0;
        }
        let progress = (t - t0) as f64 / (t_end - t0) as f64;
        sf + (s0 - sf) * (1.0 - progress).powi(3)
    }

    /// Masks at `sparsity`: the largest `|w|` among the weights still kept survive (already
    /// pruned weights score −1, below any magnitude, so they stay pruned).
    fn prune(&self, weights: &[HostWeight<'_>], sparsity: f64) -> Vec<Mask> {
        let magnitudes = |(i, w): (usize, &HostWeight<'_>)| {
            let kept = self.current.as_ref().map(|m| m[i].keep.as_slice());
            w.values
                .iter()
                .enumerate()
                .map(|(j, v)| match kept {
                    Some(k) if !k[j] => -1.0,
                    _ => v.abs(),
                })
                .collect::<Vec<f32>>()
        };
        match self.config.scope {
            Scope::Layer => weights
                .iter()
                .enumerate()
                .map(|(i, w)| Mask {
                    id: w.info.id,
                    keep: top_k(
                        &magnitudes((i, w)),
                        w.values.len() - pruned_count(sparsity, w.values.len()),
                    ),
                })
                .collect(),
            Scope::Global => {
                let all: Vec<f32> = weights.iter().enumerate().flat_map(magnitudes).collect();
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

    fn monotone(&self) -> bool {
        true
    }

    fn target_sparsity(&self) -> f64 {
        self.config.sparsity
    }

    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>> {
        let at = |f: f64| (f * ctx.total_steps as f64).round() as usize;
        self.window = (at(self.config.start), at(self.config.end));
        self.current = None;
        let s = self.sparsity_at(0);
        (s > 0.0).then(|| self.remember(self.prune(weights, s)))
    }

    fn due(&self, step: usize) -> bool {
        let (t0, t_end) = self.window;
        step >= t0
            && step <= t_end
            && ((step - t0).is_multiple_of(self.config.every) || step == t_end)
    }

    fn resume(
        &mut self,
        masks: Option<Vec<Mask>>,
        _state: &serde_json::Value,
    ) -> Result<(), String> {
        self.current = masks;
        Ok(())
    }

    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        _grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>> {
        Some(self.remember(self.prune(weights, self.sparsity_at(step))))
    }
}

impl Gmp {
    fn remember(&mut self, masks: Vec<Mask>) -> Vec<Mask> {
        self.current = Some(masks.clone());
        masks
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

    fn ctx(total_steps: usize) -> TopologyContext {
        TopologyContext {
            total_steps,
            steps_per_epoch: 10,
            seed: 0,
        }
    }

    /// `start == end` is one-shot pruning: at that step the mask jumps to `s_f` (it never pruned
    /// before the fix: the schedule returned `s_0` at `t₀`).
    #[test]
    fn one_shot_pruning_prunes_at_its_step() {
        let a = info(10);
        let va: Vec<f32> = (1..=10).map(|v| v as f32).collect();
        let w = [HostWeight {
            info: &a,
            values: &va,
        }];
        let mut g = Gmp::new(GmpConfig {
            sparsity: 0.8,
            start: 0.5,
            end: 0.5,
            ..GmpConfig::default()
        });
        assert!(g.init(&ctx(100), &w).is_none());
        let due: Vec<usize> = (1..=100).filter(|&t| g.due(t)).collect();
        assert_eq!(due, vec![50]);
        let m = g.update(50, &w, None).unwrap();
        assert_eq!(m[0].sparsity(), 0.8);
        // At 0 it happens at initialisation.
        let mut g = Gmp::new(GmpConfig {
            sparsity: 0.8,
            start: 0.0,
            end: 0.0,
            ..GmpConfig::default()
        });
        assert_eq!(g.init(&ctx(100), &w).unwrap()[0].sparsity(), 0.8);
        assert!((1..=100).all(|t| !g.due(t)));
    }

    /// A weight pruned earlier is never kept again, even when the values handed in are ones an
    /// optimiser revived (dual averaging) or exact zeros tie with it.
    #[test]
    fn pruned_weights_never_return() {
        let a = info(6);
        let mut g = gmp(Scope::Global);
        let mut prune = |step: usize, values: &[f32]| {
            let w = [HostWeight { info: &a, values }];
            g.update(step, &w, None).unwrap().remove(0)
        };
        let m1 = prune(50, &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
        let pruned: Vec<usize> = (0..6).filter(|&i| !m1.keep[i]).collect();
        assert!(!pruned.is_empty());
        // The pruned entries come back large; kept ones include exact zeros.
        let m2 = prune(100, &[9.0, 9.0, 0.0, 0.0, 0.5, 0.6]);
        for i in pruned {
            assert!(!m2.keep[i], "entry {i} came back: {:?}", m2.keep);
        }
        assert!(m2.sparsity() >= m1.sparsity());
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
