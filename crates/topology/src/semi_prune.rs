//! `semi-prune`: semi-pruning with threshold adaptation (Li et al., arXiv 2103.16013; SPEC.md
//! §1.2).
//!
//! Masks over every weight tensor (classifier included); masked weights keep their latent
//! values, which the optimiser goes on updating with a zero gradient, so a regrown weight
//! restarts from its decayed value (its momentum is reset to 0 by the training loop).
//!
//! - Initial mask: uniformly random, sparsity `s₀` in every layer.
//! - Update every `f` steps for `t_b ≤ t ≤ t_e` (`start`, `end` fractions of training).
//! - Drop, per unit j (the incoming weights of one neuron or filter): active weights with
//!   `|w_ji| < h(t)·mean_active|w_j|`, `h(t) = h₀·(½cos(π(t − t_b)/(t_e − t_b)) + ½)`.
//! - Grow, per layer: `k = ⌊n_drop·γ_grow⌋` of the weights inactive before this update's drop,
//!   ranked by `|g_ji|/‖g_j‖₂` of the dense gradient of the current batch (`grow = "signed"`:
//!   by `g_ji/‖g_j‖₂`, the reference code's ranking).
//! - Threshold adaptation, after each update with `s` the sparsity of all masked tensors:
//!   `γ_grow ← (1 − d)·s/S*` if `s < S*·(1 − ½h(t))`, else `(1 + d)·s/S*` (`adapt = false`
//!   keeps `γ_grow = γ₀`).
//!
//! Choices where SPEC is silent (ours): ranking for growth is per layer over the row-normalised
//! scores (normalising rows only matters across rows); `n_drop` is the layer's drop count, so
//! every layer's density moves by `(γ_grow − 1)·n_drop`; a weight dropped in this update is not
//! regrown in it (as in RigL); `h` in the adaptation rule is the current `h(t)`; `s` is the
//! sparsity over every masked tensor (one `γ_grow` for the network).

use crate::density::Distribution;
use crate::select::top_k;
use crate::static_mask::draw;
use crate::topology::{HostWeight, Mask, MaskedEntries, Topology, TopologyContext};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_half_open, check_non_negative};
use sparselab_core::rng::stream;
use sparselab_core::{ConfigError, FromConfig, Validate};

/// How regrown weights are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrowRank {
    /// Largest `|g|/‖g_row‖₂` (SPEC).
    Abs,
    /// Largest `g/‖g_row‖₂` (the reference code).
    Signed,
}

/// Hyperparameters of [`SemiPrune`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemiPruneConfig {
    /// Target sparsity S* of all masked tensors.
    pub sparsity: f64,
    /// Initial random sparsity `s₀` of every layer.
    pub initial: f64,
    /// Steps between updates `f`.
    pub every: usize,
    /// First update `t_b` as a fraction of training.
    pub start: f64,
    /// Last update `t_e` as a fraction of training (masks are frozen after it).
    pub end: f64,
    /// Drop threshold scale `h₀`.
    pub h0: f64,
    /// Initial growth ratio `γ_grow`.
    pub gamma0: f64,
    /// Adaptation step `d`.
    pub d: f64,
    /// Threshold adaptation of `γ_grow` towards S* (off: `γ_grow = γ₀` throughout).
    pub adapt: bool,
    /// Growth ranking.
    pub grow: GrowRank,
}

impl Default for SemiPruneConfig {
    fn default() -> Self {
        Self {
            sparsity: 0.9,
            initial: 0.2,
            every: 40,
            start: 0.2,
            end: 0.8,
            h0: 0.2,
            gamma0: 0.95,
            d: 0.1,
            adapt: true,
            grow: GrowRank::Abs,
        }
    }
}

impl Validate for SemiPruneConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("sparsity", self.sparsity, 0.0, 1.0)?;
        check_half_open("initial", self.initial, 0.0, 1.0)?;
        check_closed("start", self.start, 0.0, 1.0)?;
        check_closed("end", self.end, self.start, 1.0)?;
        check_closed("h0", self.h0, 0.0, 1.0)?;
        check_non_negative("gamma0", self.gamma0)?;
        check_half_open("d", self.d, 0.0, 1.0)?;
        if self.every == 0 {
            return Err(ConfigError::out_of_range("every", 0, "every >= 1"));
        }
        Ok(())
    }
}

/// Semi-pruning (registry entry and state).
#[derive(Clone, Debug)]
pub struct SemiPrune {
    config: SemiPruneConfig,
    /// `t_b`, `t_e` in steps.
    window: (usize, usize),
    /// The current growth ratio.
    gamma: f64,
    current: Vec<Mask>,
}

impl FromConfig<dyn Topology> for SemiPrune {
    type Config = SemiPruneConfig;
    const NAME: &'static str = "semi-prune";
    const SUMMARY: &'static str = "semi-pruning: per-unit drop threshold, gradient regrowth, threshold adaptation to S*, latent weights (SPEC §1.2)";

    fn from_config(config: SemiPruneConfig) -> Box<dyn Topology> {
        Box::new(SemiPrune::new(config))
    }
}

impl SemiPrune {
    /// Semi-pruning with `config` (masks are drawn by [`Topology::init`]).
    pub fn new(config: SemiPruneConfig) -> Self {
        Self {
            gamma: config.gamma0,
            config,
            window: (0, 0),
            current: Vec::new(),
        }
    }

    /// The drop threshold factor `h(t)`.
    pub fn threshold(&self, t: usize) -> f64 {
        let (tb, te) = self.window;
        let progress = if te > tb {
            (t.saturating_sub(tb)) as f64 / (te - tb) as f64
        } else {
            0.0
        };
        self.config.h0 * (0.5 * (std::f64::consts::PI * progress.min(1.0)).cos() + 0.5)
    }

    /// The current growth ratio `γ_grow`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// One layer's new mask at threshold factor `h`.
    fn evolve_layer(&self, keep: &[bool], w: &HostWeight<'_>, grad: &[f32], h: f64) -> Vec<bool> {
        let units = w.info.units();
        let unit = |i: usize| w.info.unit_of(i);
        let (mut sum, mut count, mut g2) = (
            vec![0.0f64; units],
            vec![0usize; units],
            vec![0.0f64; units],
        );
        for (i, (&k, &v)) in keep.iter().zip(w.values).enumerate() {
            g2[unit(i)] += f64::from(grad[i]).powi(2);
            if k {
                sum[unit(i)] += f64::from(v.abs());
                count[unit(i)] += 1;
            }
        }
        let mut next = keep.to_vec();
        let mut dropped = 0usize;
        for (i, (&k, &v)) in keep.iter().zip(w.values).enumerate() {
            let j = unit(i);
            if k && f64::from(v.abs()) < h * sum[j] / count[j].max(1) as f64 {
                next[i] = false;
                dropped += 1;
            }
        }
        let candidates: Vec<usize> = (0..keep.len()).filter(|&i| !keep[i]).collect();
        let k = ((dropped as f64 * self.gamma).floor() as usize).min(candidates.len());
        let scores: Vec<f32> = candidates
            .iter()
            .map(|&i| {
                let g = f64::from(grad[i]) / g2[unit(i)].sqrt().max(f64::MIN_POSITIVE);
                (match self.config.grow {
                    GrowRank::Abs => g.abs(),
                    GrowRank::Signed => g,
                }) as f32
            })
            .collect();
        for (chosen, &i) in top_k(&scores, k).into_iter().zip(&candidates) {
            if chosen {
                next[i] = true;
            }
        }
        next
    }
}

impl Topology for SemiPrune {
    fn name(&self) -> &'static str {
        "semi-prune"
    }

    fn masked_entries(&self) -> MaskedEntries {
        MaskedEntries::Latent
    }

    fn target_sparsity(&self) -> f64 {
        self.config.sparsity
    }

    fn reaches_target_exactly(&self) -> bool {
        false
    }

    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>> {
        let at = |f: f64| (f * ctx.total_steps as f64).round() as usize;
        self.window = (at(self.config.start), at(self.config.end));
        self.gamma = self.config.gamma0;
        let mut rng = stream(ctx.seed, "topology");
        self.current = draw(
            weights,
            self.config.initial,
            Distribution::Uniform,
            &mut rng,
        );
        Some(self.current.clone())
    }

    fn due(&self, step: usize) -> bool {
        let (tb, te) = self.window;
        step >= tb.max(1) && step <= te && step.is_multiple_of(self.config.every)
    }

    fn needs_dense_grad(&self) -> bool {
        true
    }

    /// The adapted growth ratio, as its bits (a float written as text may not read back
    /// exactly).
    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "gamma_bits": self.gamma.to_bits() })
    }

    fn resume(
        &mut self,
        masks: Option<Vec<Mask>>,
        state: &serde_json::Value,
    ) -> Result<(), String> {
        let bits = state
            .get("gamma_bits")
            .and_then(serde_json::Value::as_u64)
            .ok_or("semi-prune's state has no `gamma_bits`")?;
        self.gamma = f64::from_bits(bits);
        self.current = masks.ok_or("semi-prune always has masks after init")?;
        Ok(())
    }

    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>> {
        let grads = grads.expect("semi-prune needs the dense gradient; the loop provides it");
        let h = self.threshold(step);
        let next: Vec<Mask> = self
            .current
            .iter()
            .zip(weights)
            .zip(grads)
            .map(|((mask, w), g)| Mask {
                id: mask.id,
                keep: self.evolve_layer(&mask.keep, w, g, h),
            })
            .collect();
        if self.config.adapt {
            let (s, target) = (Mask::overall_sparsity(&next), self.config.sparsity);
            let factor = if s < target * (1.0 - 0.5 * h) {
                1.0 - self.config.d
            } else {
                1.0 + self.config.d
            };
            self.gamma = factor * s / target;
        }
        self.current = next.clone();
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparselab_core::{ParamInfo, WeightKind};

    fn ctx(total_steps: usize) -> TopologyContext {
        TopologyContext {
            total_steps,
            steps_per_epoch: total_steps,
            seed: 1,
        }
    }

    #[test]
    fn threshold_follows_the_cosine_from_h0_to_zero() {
        let mut s = SemiPrune::new(SemiPruneConfig::default());
        let info = ParamInfo::weight(WeightKind::Linear, vec![4, 2]);
        s.init(
            &ctx(1000),
            &[HostWeight {
                info: &info,
                values: &[1.0; 8],
            }],
        );
        assert_eq!(s.window, (200, 800));
        assert!((s.threshold(200) - 0.2).abs() < 1e-12);
        assert!((s.threshold(500) - 0.1).abs() < 1e-12);
        assert!(s.threshold(800).abs() < 1e-12);
        assert!(s.due(240) && !s.due(160) && !s.due(241) && !s.due(840));
    }

    #[test]
    fn initial_mask_has_sparsity_s0_in_every_layer() {
        let mut s = SemiPrune::new(SemiPruneConfig::default());
        let a = ParamInfo::weight(WeightKind::Linear, vec![50, 10]);
        let b = ParamInfo::weight(WeightKind::Linear, vec![10, 10]);
        let masks = s
            .init(
                &ctx(100),
                &[
                    HostWeight {
                        info: &a,
                        values: &[1.0; 500],
                    },
                    HostWeight {
                        info: &b,
                        values: &[1.0; 100],
                    },
                ],
            )
            .unwrap();
        assert_eq!(masks[0].sparsity(), 0.2);
        assert_eq!(masks[1].sparsity(), 0.2);
    }

    /// One hand-computed update of a `[d_in = 3, d_out = 2]` layer (unit j = column j: entries
    /// 0, 2, 4 feed unit 0, entries 1, 3, 5 unit 1), with h = 0.5, γ = 1 and entries 4, 5
    /// inactive:
    /// - unit 0 active |w| = 1.0, 0.1 → threshold 0.5·0.55 = 0.275: entry 2 drops;
    /// - unit 1 active |w| = 2.0, 1.5 → threshold 0.875: nothing drops;
    /// - one weight grows from {4, 5}, ranked by g/‖g_unit‖₂ (|·| for `abs`).
    #[test]
    fn drop_per_unit_and_grow_by_normalised_gradient() {
        let info = ParamInfo::weight(WeightKind::Linear, vec![3, 2]);
        let values = [1.0, 2.0, 0.1, -1.5, 0.0, 0.0];
        let update = |grow: GrowRank, grads: Vec<f32>| -> Vec<bool> {
            let mut s = SemiPrune::new(SemiPruneConfig {
                h0: 0.5,
                gamma0: 1.0,
                adapt: false,
                grow,
                ..SemiPruneConfig::default()
            });
            s.window = (0, 1000);
            s.current = vec![Mask {
                id: info.id,
                keep: vec![true, true, true, true, false, false],
            }];
            let weights = [HostWeight {
                info: &info,
                values: &values,
            }];
            s.update(1, &weights, Some(&[grads]))
                .unwrap()
                .remove(0)
                .keep
        };
        // Unit 0 gradient (0, 0, 3): entry 4 scores 3/3 = 1; unit 1 (1, 0, −2): entry 5 scores
        // |−2|/√5 ≈ 0.89. |gradient| grows entry 4.
        assert_eq!(
            update(GrowRank::Abs, vec![0.0, 1.0, 0.0, 0.0, 3.0, -2.0]),
            vec![true, true, false, true, true, false]
        );
        // Signs flipped: entry 4 scores −1, entry 5 +0.89. Signed ranking grows entry 5, where
        // |gradient| would still pick entry 4.
        let flipped = vec![0.0, 1.0, 0.0, 0.0, -3.0, 2.0];
        assert_eq!(
            update(GrowRank::Signed, flipped.clone()),
            vec![true, true, false, true, false, true]
        );
        assert_eq!(
            update(GrowRank::Abs, flipped),
            vec![true, true, false, true, true, false]
        );
    }

    #[test]
    fn adaptation_moves_gamma_towards_the_target() {
        let info = ParamInfo::weight(WeightKind::Linear, vec![100, 1]);
        let mut s = SemiPrune::new(SemiPruneConfig {
            sparsity: 0.5,
            ..SemiPruneConfig::default()
        });
        let values: Vec<f32> = (0..100).map(|i| i as f32 + 1.0).collect();
        s.init(
            &ctx(100),
            &[HostWeight {
                info: &info,
                values: &values,
            }],
        );
        let grads = vec![vec![1.0; 100]];
        let before = Mask::overall_sparsity(&s.current);
        let next = s
            .update(
                20,
                &[HostWeight {
                    info: &info,
                    values: &values,
                }],
                Some(&grads),
            )
            .unwrap();
        let after = Mask::overall_sparsity(&next);
        // Below target: γ = 0.9·s/S* < 1, so fewer weights grow than drop.
        assert!(after >= before);
        assert!((s.gamma() - 0.9 * after / 0.5).abs() < 1e-12);
    }
}
