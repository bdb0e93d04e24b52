//! The drop-and-grow engine of dynamic sparse training, shared by [`set`](crate::set) and
//! [`rigl`](crate::rigl) (SPEC §2; Mocanu et al. 2018, Evci et al. 2020).
//!
//! Start from a random mask with ERK (or uniform) densities. Every `Δt` steps until
//! `T_end = end·T`, in every masked layer:
//!
//! ```text
//! f(t) = (α/2)·(1 + cos(π·t/T_end))
//! k    = min(⌊f(t)·n_active⌋, n_inactive)
//! drop the k active weights of smallest |w ⊙ m|            (ties: the later position drops)
//! grow k of the weights inactive before the drop            SET: uniformly at random
//!                                                           RigL: largest |dense gradient|
//! ```
//!
//! so a weight just dropped is never regrown in the same update and each layer's density stays
//! constant. Masked weights are zeroed for good: a regrown weight starts at 0.0, and the training
//! loop resets its optimiser state (SPEC §2, ours). `k` is capped by the inactive count (a layer
//! denser than 1/(1+f) cannot swap more); a dense layer (ERK density 1) never changes.

use crate::density::Distribution;
use crate::select::top_k;
use crate::static_mask::draw;
use crate::topology::{HostWeight, Mask, Topology, TopologyContext};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_closed, check_half_open};
use sparselab_core::rng::{ChaCha8Rng, SeedableRng, index, stream};
use sparselab_core::{ConfigError, Validate};

/// Hyperparameters of SET and RigL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropGrowConfig {
    /// Global sparsity (constant over training).
    pub sparsity: f64,
    /// How densities are spread over layers.
    pub distribution: Distribution,
    /// Steps between updates `Δt`.
    pub every: usize,
    /// Last update `T_end` as a fraction of training.
    pub end: f64,
    /// Initial drop fraction α.
    pub alpha: f64,
}

impl Default for DropGrowConfig {
    fn default() -> Self {
        Self {
            sparsity: 0.9,
            distribution: Distribution::Erk,
            every: 100,
            end: 0.75,
            alpha: 0.3,
        }
    }
}

impl Validate for DropGrowConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_half_open("sparsity", self.sparsity, 0.0, 1.0)?;
        check_closed("end", self.end, 0.0, 1.0)?;
        check_closed("alpha", self.alpha, 0.0, 1.0)?;
        if self.every == 0 {
            return Err(ConfigError::out_of_range("every", 0, "every >= 1"));
        }
        Ok(())
    }
}

/// How regrown weights are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Uniformly at random (SET).
    Random,
    /// Largest magnitude of the dense gradient of the current batch (RigL).
    Gradient,
}

/// Dynamic sparse training with a constant per-layer density.
#[derive(Clone, Debug)]
pub struct DropGrow {
    name: &'static str,
    config: DropGrowConfig,
    growth: Growth,
    /// `T_end` in steps.
    t_end: usize,
    /// Draws the initial masks and SET's regrowth (the run's `"topology"` stream).
    rng: ChaCha8Rng,
    /// The current masks.
    current: Vec<Mask>,
}

impl DropGrow {
    /// The topology registered as `name`.
    pub fn new(name: &'static str, config: DropGrowConfig, growth: Growth) -> Self {
        Self {
            name,
            config,
            growth,
            t_end: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
            current: Vec::new(),
        }
    }

    /// The drop fraction `f(t) = (α/2)(1 + cos(πt/T_end))`.
    pub fn drop_fraction(&self, t: usize) -> f64 {
        let progress = t as f64 / self.t_end.max(1) as f64;
        self.config.alpha / 2.0 * (1.0 + (std::f64::consts::PI * progress).cos())
    }

    /// The new mask of one layer at drop fraction `f`.
    fn evolve_layer(
        &mut self,
        keep: &[bool],
        values: &[f32],
        grad: Option<&[f32]>,
        f: f64,
    ) -> Vec<bool> {
        let (active, inactive): (Vec<usize>, Vec<usize>) = (0..keep.len()).partition(|&i| keep[i]);
        let k = ((f * active.len() as f64).floor() as usize).min(inactive.len());
        if k == 0 {
            return keep.to_vec();
        }
        let mut next = vec![false; keep.len()];
        let magnitudes: Vec<f32> = active.iter().map(|&i| values[i].abs()).collect();
        for (j, kept) in top_k(&magnitudes, active.len() - k).into_iter().enumerate() {
            next[active[j]] = kept;
        }
        let grown: Vec<usize> = match (self.growth, grad) {
            (Growth::Gradient, Some(g)) => {
                let scores: Vec<f32> = inactive.iter().map(|&i| g[i].abs()).collect();
                top_k(&scores, k)
                    .into_iter()
                    .zip(&inactive)
                    .filter_map(|(chosen, &i)| chosen.then_some(i))
                    .collect()
            }
            (Growth::Gradient, None) => {
                panic!("RigL needs the dense gradient; the training loop provides it when due")
            }
            (Growth::Random, _) => index::sample(&mut self.rng, inactive.len(), k)
                .into_iter()
                .map(|j| inactive[j])
                .collect(),
        };
        for i in grown {
            next[i] = true;
        }
        next
    }
}

impl Topology for DropGrow {
    fn name(&self) -> &'static str {
        self.name
    }

    fn target_sparsity(&self) -> f64 {
        self.config.sparsity
    }

    fn init(&mut self, ctx: &TopologyContext, weights: &[HostWeight<'_>]) -> Option<Vec<Mask>> {
        self.t_end = (self.config.end * ctx.total_steps as f64).round() as usize;
        self.rng = stream(ctx.seed, "topology");
        self.current = draw(
            weights,
            self.config.sparsity,
            self.config.distribution,
            &mut self.rng,
        );
        Some(self.current.clone())
    }

    fn due(&self, step: usize) -> bool {
        step > 0 && step < self.t_end && step.is_multiple_of(self.config.every)
    }

    fn needs_dense_grad(&self) -> bool {
        self.growth == Growth::Gradient
    }

    /// The position of the regrowth stream (the stream itself is drawn again by
    /// [`init`](Topology::init)), as text: JSON numbers stop at 64 bits.
    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "rng_word_pos": self.rng.get_word_pos().to_string() })
    }

    fn resume(
        &mut self,
        masks: Option<Vec<Mask>>,
        state: &serde_json::Value,
    ) -> Result<(), String> {
        let pos = state
            .get("rng_word_pos")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.parse::<u128>().ok())
            .ok_or_else(|| format!("{}'s state has no `rng_word_pos`", self.name))?;
        self.rng.set_word_pos(pos);
        self.current = masks.ok_or_else(|| format!("{} always has masks after init", self.name))?;
        Ok(())
    }

    fn update(
        &mut self,
        step: usize,
        weights: &[HostWeight<'_>],
        grads: Option<&[Vec<f32>]>,
    ) -> Option<Vec<Mask>> {
        let f = self.drop_fraction(step);
        let current = std::mem::take(&mut self.current);
        let next: Vec<Mask> = current
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (mask, w))| Mask {
                id: mask.id,
                keep: self.evolve_layer(&mask.keep, w.values, grads.map(|g| g[i].as_slice()), f),
            })
            .collect();
        self.current = next.clone();
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sparselab_core::{ParamInfo, WeightKind};

    fn engine(growth: Growth, t_end: usize) -> DropGrow {
        let mut e = DropGrow::new("test", DropGrowConfig::default(), growth);
        e.t_end = t_end;
        e
    }

    #[test]
    fn drop_fraction_is_cosine_annealed_from_alpha_half() {
        let e = engine(Growth::Random, 1000);
        assert!((e.drop_fraction(0) - 0.3).abs() < 1e-12);
        assert!((e.drop_fraction(500) - 0.15).abs() < 1e-12);
        assert!(e.drop_fraction(1000).abs() < 1e-12);
    }

    #[test]
    fn due_every_delta_t_before_t_end() {
        let mut e = engine(Growth::Random, 350);
        e.config.every = 100;
        let due: Vec<usize> = (0..500).filter(|&t| e.due(t)).collect();
        assert_eq!(due, vec![100, 200, 300]);
    }

    /// Hand-worked RigL update: the two smallest active weights drop, the two inactive entries
    /// with the largest |gradient| grow, the just-dropped ones are not candidates.
    #[test]
    fn rigl_drops_smallest_and_grows_largest_gradient() {
        let mut e = engine(Growth::Gradient, 100);
        let keep = [true, true, true, true, false, false, false, false];
        let values = [0.1f32, -0.5, 0.05, 0.9, 0.0, 0.0, 0.0, 0.0];
        // Huge gradients on the active entries must not matter.
        let grad = [9.0f32, 9.0, 9.0, 9.0, 0.2, -0.7, 0.1, 0.4];
        let next = e.evolve_layer(&keep, &values, Some(&grad), 0.5);
        assert_eq!(
            next,
            vec![false, true, false, true, false, true, false, true]
        );
    }

    #[test]
    fn a_dense_layer_never_changes() {
        let mut e = engine(Growth::Random, 100);
        let keep = [true; 5];
        assert_eq!(
            e.evolve_layer(&keep, &[1.0, 2.0, 3.0, 4.0, 5.0], None, 0.3),
            keep.to_vec()
        );
    }

    proptest! {
        /// Density is constant, at most ⌊f·n_active⌋ weights swap, and no weight dropped in an
        /// update is regrown by it.
        #[test]
        fn updates_keep_density_and_never_regrow_what_they_drop(
            values in proptest::collection::vec(-1.0f32..1.0, 4..80),
            grads in proptest::collection::vec(-1.0f32..1.0, 80),
            density in 0.05f64..0.95,
            f in 0.0f64..0.5,
            rigl in proptest::bool::ANY,
            seed in 0u64..100,
        ) {
            let n = values.len();
            let info = ParamInfo::weight(WeightKind::Linear, vec![1, n]);
            let mut e = engine(if rigl { Growth::Gradient } else { Growth::Random }, 100);
            let mut rng = stream(seed, "mask");
            let keep = crate::select::random_k(n, ((n as f64) * density) as usize, &mut rng);
            let masked: Vec<f32> = values.iter().zip(&keep).map(|(v, k)| if *k { *v } else { 0.0 }).collect();
            let _ = &info;
            let next = e.evolve_layer(&keep, &masked, Some(&grads[..n]), f);
            let active = keep.iter().filter(|k| **k).count();
            prop_assert_eq!(next.iter().filter(|k| **k).count(), active);
            let dropped: Vec<usize> = (0..n).filter(|&i| keep[i] && !next[i]).collect();
            let grown: Vec<usize> = (0..n).filter(|&i| !keep[i] && next[i]).collect();
            prop_assert_eq!(dropped.len(), grown.len());
            prop_assert!(dropped.len() <= (f * active as f64).floor() as usize);
        }
    }
}
