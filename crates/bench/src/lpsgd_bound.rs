//! A lower bound on LpSGD's training step from its powers alone, to hold against the goal of a
//! step within 1.10× of SGD's.
//!
//! LpSGD's sphere step (SPEC §1.2) takes three f32 powers per constrained weight and step
//! ([`step_powers`]), computed by [`Power`] at the CPU's full vector width on every thread of the
//! pool. Those powers alone, whatever else the step does, take a time `P`. The rest of a training
//! step (forward, backward, the loss read back) is SGD's step minus SGD's update, so no LpSGD
//! step can take less than
//!
//! ```text
//! bound = (T_sgd − U_sgd + P) / T_sgd      (× SGD's step)
//! ```
//!
//! with `T_sgd` SGD's training step and `U_sgd` its update. Storing the dual vector as state (a
//! change of the method's documented choice, see `lpsgd`) would save the dual map's power: that
//! bound takes two thirds of `P` (every exponent costs [`Power`] the same series). The bound
//! leaves out everything else LpSGD's update does (momentum, the unit maxima and sums, a division
//! per element in two of the powers' passes, the final scale), so the measured ratio must sit
//! above it. [`PowerWork`] raises each constrained weight's magnitudes (scaled by the tensor's
//! largest, as LpSGD scales by a unit's largest) to the three exponents of its layer's p, in
//! pieces of [`sparselab_core::units::PIECE`] elements on rayon's current pool, as LpSGD's passes
//! run.

use anyhow::Context;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sparselab_core::powf::Power;
use sparselab_core::units::PIECE;
use sparselab_models::{Architecture, Model};
use sparselab_optimizers::SparseOptimizer;
use sparselab_optimizers::lpsgd::{LpSgd, LpSgdConfig, step_powers};

use crate::timing::Estimate;

/// The powers of one LpSGD step on a model's constrained weights, ready to time.
pub struct PowerWork {
    /// Per constrained weight: its magnitudes over its largest, and its layer's three powers.
    layers: Vec<(Vec<f32>, [Power; 3])>,
    /// Where the powers are written (as long as the largest weight).
    out: Vec<f32>,
}

impl PowerWork {
    /// The constrained weights of `model` under LpSGD's default configuration, with their
    /// current values.
    pub fn new(model: &Model) -> anyhow::Result<Self> {
        let table = model.describe();
        let config = LpSgdConfig::default();
        let mut constrained = Vec::new();
        for param in table.iter() {
            let opt = LpSgd::for_param(&config, None, param, &table)
                .context("LpSGD's default configuration on the benchmark model")?;
            if let Some(p) = opt.sphere_p() {
                constrained.push((param.id, step_powers(p).map(Power::new)));
            }
        }
        let ids: Vec<_> = constrained.iter().map(|(id, _)| *id).collect();
        let values = sparselab_core::param::host_values(model, &ids);
        let layers: Vec<(Vec<f32>, [Power; 3])> = values
            .into_iter()
            .zip(constrained)
            .map(|(w, (_, powers))| {
                let max = w.iter().fold(f32::MIN_POSITIVE, |m, x| m.max(x.abs()));
                (w.iter().map(|x| x.abs() / max).collect(), powers)
            })
            .collect();
        let longest = layers.iter().map(|(w, _)| w.len()).max().unwrap_or(0);
        Ok(Self {
            layers,
            out: vec![0.0; longest],
        })
    }

    /// How many weights the powers are taken of.
    pub fn weights(&self) -> usize {
        self.layers.iter().map(|(w, _)| w.len()).sum()
    }

    /// One step's powers: every constrained weight raised to its layer's three exponents.
    pub fn run(&mut self) {
        for (x, powers) in &self.layers {
            for power in *powers {
                self.out[..x.len()]
                    .par_chunks_mut(PIECE)
                    .zip(x.par_chunks(PIECE))
                    .for_each(|(out, x)| {
                        // A plain loop: a closure handed to `for_each` here was compiled outside
                        // the vector kernel (each power then calls libm's `fmaf`: about 30× slower, measured).
                        sparselab_core::widest!(for (y, x) in out.iter_mut().zip(x) {
                            *y = power.of(*x)
                        })
                    });
            }
        }
        std::hint::black_box(&self.out);
    }
}

/// The bound and what it is made of, in `bench.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LpSgdBound {
    /// Constrained weights of the benchmarked model.
    pub weights: usize,
    /// Powers per weight and step.
    pub powers_per_weight: usize,
    /// The powers of one step alone ([`PowerWork::run`]).
    pub powers: Estimate,
    /// `(T_sgd − U_sgd + P) / T_sgd`, from the criterion means of the same bench.
    pub step_bound_vs_sgd: f64,
    /// The same with two of the three powers (a stored dual vector).
    pub step_bound_two_powers_vs_sgd: f64,
    /// LpSGD's measured step ÷ SGD's (the paired median of its row), for comparison.
    pub measured_vs_sgd: f64,
}

impl LpSgdBound {
    /// The bound from the powers' time and SGD's step and update (criterion means, seconds).
    pub fn new(
        work: &PowerWork,
        powers: Estimate,
        sgd_step: f64,
        sgd_update: f64,
        measured_vs_sgd: f64,
    ) -> Self {
        Self {
            weights: work.weights(),
            powers_per_weight: 3,
            step_bound_vs_sgd: step_bound(sgd_step, sgd_update, powers.mean),
            step_bound_two_powers_vs_sgd: step_bound(sgd_step, sgd_update, powers.mean * 2.0 / 3.0),
            powers,
            measured_vs_sgd,
        }
    }

    /// The section of `bench.md`.
    pub fn markdown(&self, goal: f64) -> String {
        format!(
            "\n## A lower bound on LpSGD's step\n\nLpSGD's sphere step (SPEC §1.2) takes {} f32 \
             powers per constrained weight and step (`lpsgd::step_powers`: q, p − 1 and \
             1/(p − 1)). Timed alone, at full vector width on every thread, on the {} \
             constrained weights of LeNet-300-100 at LpSGD's default p: **{:.1} µs** [{:.1}, \
             {:.1}]. With the rest of SGD's step (its train step minus its update, above), no \
             step that takes these powers can take less than **{:.2}× SGD's** on this machine, \
             whatever else its update does, and {:.2}× with two of them (the dual vector stored \
             as state); measured: {:.2}× (its row above). The goal is ≤ {goal:.2}×.\n",
            self.powers_per_weight,
            self.weights,
            self.powers.mean * 1e6,
            self.powers.ci95.0 * 1e6,
            self.powers.ci95.1 * 1e6,
            self.step_bound_vs_sgd,
            self.step_bound_two_powers_vs_sgd,
            self.measured_vs_sgd,
        )
    }
}

/// `(T − U + P) / T`: a step whose update takes at least `P` in place of SGD's `U`, relative to
/// SGD's step `T`.
fn step_bound(sgd_step: f64, sgd_update: f64, powers: f64) -> f64 {
    (sgd_step - sgd_update + powers) / sgd_step
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// Powers as long as SGD's update leave the step where it is; each further step-length of
    /// powers adds one.
    #[test]
    fn the_bound_replaces_sgds_update_with_the_powers() {
        assert_eq!(step_bound(2.0, 0.5, 0.5), 1.0);
        assert_eq!(step_bound(2.0, 0.5, 2.5), 2.0);
        assert_eq!(step_bound(2.0, 0.0, 0.0), 1.0);
    }

    /// The benchmark model's constrained weights are its two hidden layers (the classifier is
    /// free), and one run writes the third power of the last layer: `x^{1/(p − 1)}` at p = 1.2.
    #[test]
    fn the_work_is_the_hidden_layers_at_the_default_p() {
        let model = crate::fixture::setup(&Device::flex(), 2)
            .expect("the benchmark model")
            .model;
        let mut work = PowerWork::new(&model).expect("powers");
        assert_eq!(work.weights(), 784 * 300 + 300 * 100);
        work.run();
        let (x, _) = &work.layers[1];
        let want = step_powers(1.2)[2];
        for (y, x) in work.out.iter().zip(x) {
            let reference = f64::from(*x).powf(want) as f32;
            assert!(
                (y - reference).abs() <= 1e-6 * reference.max(1e-30) + f32::MIN_POSITIVE,
                "{x}^{want} = {y}, want {reference}"
            );
        }
    }
}
