//! `reweighted-l1`: adaptively reweighted ℓ1, the log penalty in disguise (SPEC.md §1.1).
//!
//! Every step the regularizer updates an exponential moving average of magnitudes
//!
//! ```text
//! A ← e^{−s/τ_b}·A + (1 − e^{−s/τ_b})·|w|        (A₀ = 0, as in the reference code)
//! ```
//!
//! and returns the per-element weights of the ℓ1 prox
//!
//! ```text
//! r = c · M / (1 + (M − 1)·A / max A)
//! ```
//!
//! so `r = c·M` for a dead weight and `r = c` for the largest. With `ε = max A/(M − 1)` this is
//! `r = c·M·ε/(ε + A)`, the derivative of the log penalty `c·M·ε·log(1 + A/ε)`: the method
//! minimises a log penalty by iterated reweighted ℓ1, and [`Regularizer::penalty`] reports that
//! log penalty. The prox stays elementwise: `S_{λθ}` with the optimiser's θ already carrying r.
//!
//! Modes: `unstructured` (A per element, c = 1); for conv weights `kernel` (A = mean |w| of each
//! `(out, in)` kernel, c = √(k_h·k_w)) and `channel` (A = mean |w| of each output filter,
//! c = √(C_in·k_h·k_w)). Linear weights always use the unstructured mode (the reference code
//! does the same). Choices of ours: `max A` is taken with a floor of 1e-30 so an all-zero tensor
//! needs no host synchronisation (its r is then `c·M`, which changes nothing: the prox of 0 is 0);
//! the reported penalty uses the current magnitudes in place of the moving average (its
//! fixed point), so it needs no optimiser state.

use crate::host::moving_average_in_place;
use crate::prox::soft_threshold;
use crate::regularizer::Regularizer;
use crate::threshold::{ElementMap, Factors, Lazy, Threshold, fill_each};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_non_negative, check_positive};
use sparselab_core::{ConfigError, FromConfig, Layout, Validate, Weight};
use std::sync::Arc;

/// How magnitudes are pooled before reweighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One weight per element.
    Unstructured,
    /// One weight per conv kernel `W[o, i, :, :]`.
    Kernel,
    /// One weight per conv output filter `W[o, :, :, :]`.
    Channel,
}

/// Hyperparameters of [`ReweightedL1`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReweightedL1Config {
    /// Strength λ (the sparsity knob).
    pub lambda: f64,
    /// Ratio `M` between the weights of a dead and of the largest entry.
    pub max_factor: f64,
    /// Time scale τ_b of the magnitude average, in units of the step size (9.5 in the
    /// reference code, the same as its momentum time scale).
    pub tau: f64,
    /// Pooling mode (conv weights only; linear weights are unstructured).
    pub mode: Mode,
}

impl Default for ReweightedL1Config {
    fn default() -> Self {
        Self {
            lambda: 1e-6,
            max_factor: 500.0,
            tau: 9.5,
            mode: Mode::Unstructured,
        }
    }
}

impl Validate for ReweightedL1Config {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("lambda", self.lambda)?;
        if !(self.max_factor.is_finite() && self.max_factor >= 1.0) {
            return Err(ConfigError::out_of_range(
                "max_factor",
                self.max_factor,
                "max_factor >= 1",
            ));
        }
        check_positive("tau", self.tau)
    }
}

/// Adaptively reweighted ℓ1.
#[derive(Clone, Debug)]
pub struct ReweightedL1 {
    config: ReweightedL1Config,
}

impl ReweightedL1 {
    /// A reweighted ℓ1 penalty with `config`.
    pub fn new(config: ReweightedL1Config) -> Self {
        Self { config }
    }

    /// Pooled magnitudes of `w` (broadcastable to it) and the group factor `c` of the mode.
    fn magnitudes(&self, w: &Weight) -> (Tensor<4>, f64) {
        let abs = w.value.clone().abs();
        let [_, c_in, kh, kw] = w.value.dims();
        match (self.config.mode, w.layout) {
            (Mode::Kernel, Layout::Conv) => {
                (abs.mean_dim(3).mean_dim(2), ((kh * kw) as f64).sqrt())
            }
            (Mode::Channel, Layout::Conv) => (
                abs.mean_dim(3).mean_dim(2).mean_dim(1),
                ((c_in * kh * kw) as f64).sqrt(),
            ),
            _ => (abs, 1.0),
        }
    }

    /// `r = c·M / (1 + (M − 1)·A / max A)` for moving averages `a`.
    pub fn weights_from_average(&self, a: Tensor<4>, scale: f64) -> Tensor<4> {
        let max = a.clone().max().clamp_min(1e-30).reshape([1, 1, 1, 1]);
        weights_of_ratio(a / max, self.config.max_factor, scale)
    }

    /// [`Regularizer::reweight`] of the unstructured mode as one pass over memory on flex
    /// ([`moving_average_in_place`], with its maximum); the weights `r` stay a map of the average
    /// ([`Weights`]) that the prox evaluates in its own pass. Bit for bit the tensor-op form.
    /// `Err` gives the state back for the tensor-op form (other backends, pooled modes).
    // `Err` hands the state back by value once per parameter and step: boxing it would only
    // add an allocation.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn reweight_fused(
        &self,
        w: &Weight,
        state: Option<Tensor<4>>,
        keep: f64,
    ) -> Result<(Threshold, Option<Tensor<4>>), Option<Tensor<4>>> {
        if self.host_groups(w).0 != 1 {
            return Err(state);
        }
        let (average, max) = moving_average_in_place(state, &w.value, keep)?;
        let floor = 1e-30f32;
        let weights = Weights {
            max: if max > floor { max } else { floor },
            max_factor: self.config.max_factor,
        };
        let theta = Lazy::mapped(average.clone(), Arc::new(weights));
        Ok((Threshold::Lazy(theta), Some(average)))
    }

    /// Size of the groups of contiguous values (burn memory order) that share one weight (1,
    /// a conv kernel's `k_h·k_w` or a conv filter's `C_in·k_h·k_w`) and the factor `c`.
    fn host_groups(&self, w: &Weight) -> (usize, f64) {
        let [_, c_in, kh, kw] = w.value.dims();
        match (self.config.mode, w.layout) {
            (Mode::Kernel, Layout::Conv) => (kh * kw, ((kh * kw) as f64).sqrt()),
            (Mode::Channel, Layout::Conv) => (c_in * kh * kw, ((c_in * kh * kw) as f64).sqrt()),
            _ => (1, 1.0),
        }
    }
}

/// `c·M / (1 + (M − 1)·ratio)` as tensor ops, `ratio = A / max A`, `m = M`, `scale = c`.
fn weights_of_ratio(ratio: Tensor<4>, m: f64, scale: f64) -> Tensor<4> {
    ratio
        .mul_scalar(m - 1.0)
        .add_scalar(1.0)
        .recip()
        .mul_scalar(scale * m)
}

/// The weights `r = M / (1 + (M − 1)·A / max A)` of the unstructured mode (c = 1) as a map of the
/// moving average A, with `max A` already known: evaluated by the prox inside its own pass
/// ([`Lazy`]), never stored.
#[derive(Clone, Copy, Debug)]
struct Weights {
    /// `max A`, floored at 1e-30.
    max: f32,
    /// `M`.
    max_factor: f64,
}

impl ElementMap for Weights {
    fn fill(&self, a: &[f32], factors: Factors, out: &mut [f32]) {
        let (max, m1, m) = (
            self.max,
            (self.max_factor - 1.0) as f32,
            self.max_factor as f32,
        );
        fill_each(out, a, factors, move |a| (1.0 / ((a / max) * m1 + 1.0)) * m);
    }

    fn tensor(&self, a: Tensor<4>) -> Tensor<4> {
        weights_of_ratio(a.div_scalar(self.max), self.max_factor, 1.0)
    }
}

/// The log penalty `Σ_g n_g·c·M·ε·log(1 + A_g/ε)`, `ε = max A/(M − 1)`, of pooled magnitudes
/// `a` (one per group of `n_g` elements). Its derivative with respect to each `|w_j|` of group g is
/// `c·M·ε/(ε + A_g)`: the weight r of [`ReweightedL1`].
pub fn log_penalty(a: &[f64], group_size: usize, scale: f64, max_factor: f64) -> f64 {
    let max = a.iter().copied().fold(0.0, f64::max);
    if max == 0.0 || max_factor <= 1.0 {
        // M = 1 is plain (scaled) ℓ1.
        return a.iter().map(|x| group_size as f64 * scale * x).sum();
    }
    let eps = max / (max_factor - 1.0);
    a.iter()
        .map(|x| group_size as f64 * scale * max_factor * eps * (x / eps).ln_1p())
        .sum()
}

impl FromConfig<dyn Regularizer> for ReweightedL1 {
    type Config = ReweightedL1Config;
    const NAME: &'static str = "reweighted-l1";
    const SUMMARY: &'static str =
        "adaptively reweighted ℓ1 = log penalty, unstructured / kernel / channel (SPEC §1.1)";

    fn from_config(config: ReweightedL1Config) -> Box<dyn Regularizer> {
        Box::new(Self { config })
    }
}

impl Regularizer for ReweightedL1 {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn strength(&self) -> f64 {
        self.config.lambda
    }

    fn penalty(&self, w: &Weight) -> f64 {
        let values: Vec<f32> = w
            .value
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float weights");
        let (group, scale) = self.host_groups(w);
        let pooled: Vec<f64> = values
            .chunks(group)
            .map(|g| g.iter().map(|v| f64::from(v.abs())).sum::<f64>() / group as f64)
            .collect();
        log_penalty(&pooled, group, scale, self.config.max_factor)
    }

    fn reweight(
        &self,
        w: &Weight,
        state: Option<Tensor<4>>,
        step_size: f64,
    ) -> (Threshold, Option<Tensor<4>>) {
        let keep = (-step_size / self.config.tau).exp();
        let state = match self.reweight_fused(w, state, keep) {
            Ok(done) => return done,
            Err(state) => state,
        };
        let (mags, scale) = self.magnitudes(w);
        let average = match state {
            Some(a) => a.mul_scalar(keep) + mags.mul_scalar(1.0 - keep),
            None => mags.mul_scalar(1.0 - keep),
        };
        let r = self.weights_from_average(average.clone(), scale);
        (Threshold::Tensor(r), Some(average))
    }

    fn prox(&self, z: Weight, theta: &Threshold) -> Weight {
        let theta = theta.clone().scale(self.config.lambda);
        z.map_value(|z| soft_threshold(z, &theta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    fn linear(values: &[f32]) -> Weight {
        Weight::from_tensor(Tensor::<2>::from_data(
            TensorData::new(values.to_vec(), [values.len(), 1]),
            &Device::flex(),
        ))
    }

    fn reg(mode: Mode, tau: f64) -> ReweightedL1 {
        ReweightedL1::new(ReweightedL1Config {
            lambda: 1.0,
            max_factor: 500.0,
            tau,
            mode,
        })
    }

    #[test]
    fn weights_are_m_for_dead_and_one_for_largest() {
        let r = reg(Mode::Unstructured, 1.0);
        let a = linear(&[0.0, 0.5, 2.0]).value;
        let w = host(r.weights_from_average(a, 1.0));
        assert!((w[0] - 500.0).abs() < 1e-3, "{w:?}");
        assert!((w[2] - 1.0).abs() < 1e-6, "{w:?}");
        // Middle: 500 / (1 + 499·0.25)
        assert!((w[1] - 500.0 / (1.0 + 499.0 * 0.25)).abs() < 1e-3, "{w:?}");
    }

    #[test]
    fn moving_average_starts_at_zero_and_tracks_magnitudes() {
        let r = reg(Mode::Unstructured, 1.0);
        let w = linear(&[1.0, -2.0]);
        let (_, a1) = r.reweight(&w, None, 1.0);
        let k = (-1.0f64).exp() as f32;
        let a1v = host(a1.clone().unwrap());
        assert!((a1v[0] - (1.0 - k)).abs() < 1e-6 && (a1v[1] - 2.0 * (1.0 - k)).abs() < 1e-6);
        let (_, a2) = r.reweight(&w, a1, 1.0);
        let a2v = host(a2.unwrap());
        assert!(
            (a2v[1] - (2.0 * (1.0 - k) * k + 2.0 * (1.0 - k))).abs() < 1e-5,
            "{a2v:?}"
        );
    }

    /// The threshold r is the gradient of the reported log penalty (central finite differences,
    /// with τ_b → 0 so the average equals the magnitudes).
    #[test]
    fn threshold_is_the_gradient_of_the_log_penalty() {
        let r = reg(Mode::Unstructured, 1e-9);
        let values = [0.3f32, -0.02, 1.5, 0.0004, -0.7];
        let w = linear(&values);
        let (_, Some(weights)) = r.reweight(&w, None, 1.0).0.into_parts() else {
            panic!("reweighting gives per-element weights");
        };
        let weights = host(weights);
        let h = 1e-5f32;
        for i in [0usize, 1, 3, 4] {
            let mut plus = values;
            let mut minus = values;
            plus[i] += h;
            minus[i] -= h;
            // The perturbation actually applied (f32 rounding of w ± h).
            let dh = f64::from(plus[i]) - f64::from(minus[i]);
            let fd = (r.penalty(&linear(&plus)) - r.penalty(&linear(&minus))) / dh;
            let expected = f64::from(weights[i]) * f64::from(values[i].signum());
            assert!(
                (fd - expected).abs() < 1e-3 * expected.abs().max(1.0),
                "i={i}: fd {fd} vs r {expected}"
            );
        }
    }

    #[test]
    fn kernel_mode_shares_weights_within_a_kernel_and_scales_by_its_size() {
        let r = reg(Mode::Kernel, 1e-9);
        // conv [out=1, in=2, 2, 2]: kernel 0 mean |w| = 1, kernel 1 mean |w| = 2.
        let w = Weight::from_tensor(Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, -1.0, 1.0, 1.0, 2.0, 2.0, -2.0, 2.0],
                [1, 2, 2, 2],
            ),
            &Device::flex(),
        ));
        let (_, Some(weights)) = r.reweight(&w, None, 1.0).0.into_parts() else {
            panic!("reweighting gives per-element weights");
        };
        assert_eq!(weights.dims(), [1, 2, 1, 1]);
        let v = host(weights);
        assert!(
            (v[1] - 2.0).abs() < 1e-5,
            "largest kernel: c = √4 = 2, {v:?}"
        );
        assert!(
            (v[0] - 2.0 * 500.0 / (1.0 + 499.0 * 0.5)).abs() < 1e-3,
            "{v:?}"
        );
    }

    #[test]
    fn log_penalty_of_m_one_is_l1() {
        assert_eq!(log_penalty(&[1.0, 2.0], 1, 1.0, 1.0), 3.0);
        assert_eq!(log_penalty(&[0.0, 0.0], 1, 1.0, 500.0), 0.0);
    }
}
