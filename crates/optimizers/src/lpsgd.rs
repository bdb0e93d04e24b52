//! `lpsgd`: training on unit Lp spheres (Li et al., arXiv 2103.16013; SPEC.md §1.2).
//!
//! Every output unit's incoming weight vector `w_j` (a column of a burn linear weight
//! `[d_in, d_out]`, a filter `W[o,:,:,:]` of a conv weight) lives on `‖w_j‖_p = 1`, `p > 1`. With
//! `q = p/(p−1)` and the dual vector `v = sign(w)⊙|w|^{p−1}` (`‖v_j‖_q = 1` on the sphere):
//!
//! ```text
//! d = g + μ·buf,  buf ← μ·buf + g            Nesterov momentum of the raw gradient (μ = 0.9)
//! ĝ = d / (‖d_j‖_q + 1e-6)                    per unit j
//! v ← (1 − η)·v − η·ĝ ;  v ← v / ‖v_j‖_q      per unit j
//! w = sign(v)⊙|v|^{1/(p−1)}                   so ‖w_j‖_p = 1 exactly
//! ```
//!
//! At the first step each unit is rescaled onto its sphere. The step does not change when the
//! gradient is multiplied by a positive constant (up to the 1e-6 guard).
//!
//! **Which weights are constrained** comes from the parameter table, never from names: every
//! weight tensor except the classifier, convs with fewer than 2 input channels and 1×1 convs (the
//! shortcuts of a ResNet). Everything else (those weights, biases, norm parameters) takes Nesterov
//! SGD with the same momentum and `weight_decay` (SPEC §1.2).
//!
//! **p per layer**: `p = 1.2` (every constrained layer), `p = [1.2, 1.2, 1.07]` (one per
//! constrained layer, in module order) or `p = { first = 4, p_first = 1.2, p_rest = 1.07 }`
//! (SPEC's "first k layers p_a, the rest p_b").
//!
//! **Choices (ours).** The dual vector is not stored: it is a function of `w`
//! (`v = sign(w)⊙|w|^{p−1}`, the inverse of the last line), so the state is the momentum buffer
//! alone. This makes the method compose with masks without special cases: under a
//! `semi-prune` mask the training loop hands the optimiser the latent values, whose dual entries
//! get a zero gradient and shrink by `(1 − η)` relative to the row before the renormalisation over
//! the whole row (SPEC), and under a zeroing topology (`rigl`, `gmp`, ...) a masked weight is 0, so
//! its dual entry is 0 and stays 0. A state reset (a regrown weight) zeroes its momentum only. The
//! cost of not storing `v` is float rounding: an entry with `|v| ≲ 7·10⁻⁴` at p = 1.07 maps to a
//! weight below f32's range and returns as `v = 0`, 10⁻³ of the typical step `η·|ĝ|`.
//! Row norms are computed as `m·‖x/m‖_q` with `m` the row's largest magnitude, since `|x|^q`
//! underflows for q ≈ 15 (p = 1.07).
//!
//! **Speed.** On the CPU backend the step runs as five passes in place ([`fused`]), in
//! parallel pieces at full vector width, with three f32 powers per element (the primal map's
//! power also gives the terms of the dual's q-norm): the same computation as the tensor-op form
//! up to float rounding.

mod fused;

use crate::factory::SparseOptimizer;
use crate::sgd::{Sgd, SgdConfig, SgdState};
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparselab_core::config::{check_half_open, check_non_negative};
use sparselab_core::{ConfigError, Lane, ParamInfo, ParamTable, Validate, Weight, WeightKind};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// The sphere exponent p of every constrained layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "p as a number > 1, a list of numbers > 1 (one per sphere-constrained layer), or { first = k, p_first = .., p_rest = .. }"
)]
pub enum SphereP {
    /// One p for every constrained layer.
    All(f64),
    /// One p per constrained layer, in module order.
    PerLayer(Vec<f64>),
    /// The first `first` constrained layers take `p_first`, the rest `p_rest`.
    Split {
        /// How many layers take `p_first`.
        first: usize,
        /// p of the first layers.
        p_first: f64,
        /// p of the remaining layers.
        p_rest: f64,
    },
}

impl SphereP {
    fn values(&self) -> Vec<f64> {
        match self {
            SphereP::All(p) => vec![*p],
            SphereP::PerLayer(ps) => ps.clone(),
            SphereP::Split {
                p_first, p_rest, ..
            } => vec![*p_first, *p_rest],
        }
    }

    /// p of the `index`-th of `count` constrained layers.
    fn of_layer(&self, index: usize, count: usize) -> Result<f64, ConfigError> {
        match self {
            SphereP::All(p) => Ok(*p),
            SphereP::PerLayer(ps) if ps.len() == count => Ok(ps[index]),
            SphereP::PerLayer(ps) => Err(ConfigError::new(
                "p",
                format!(
                    "{} values given but the model has {count} sphere-constrained layers (allowed: one number, a list of {count} numbers, or {{ first, p_first, p_rest }})",
                    ps.len()
                ),
            )),
            SphereP::Split {
                first,
                p_first,
                p_rest,
            } => Ok(if index < *first { *p_first } else { *p_rest }),
        }
    }
}

/// Hyperparameters of [`LpSgd`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LpSgdConfig {
    /// Sphere exponent per constrained layer (default 1.2, inside SPEC's typical 1.07–1.4).
    pub p: SphereP,
    /// Nesterov momentum μ, for every parameter.
    pub momentum: f64,
    /// Weight decay of the unconstrained parameters (the constrained ones have a fixed norm).
    pub weight_decay: f64,
}

impl Default for LpSgdConfig {
    fn default() -> Self {
        Self {
            p: SphereP::All(1.2),
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

impl Validate for LpSgdConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for p in self.p.values() {
            if !(p.is_finite() && p > 1.0) {
                return Err(ConfigError::out_of_range("p", p, "finite p > 1"));
            }
        }
        check_half_open("momentum", self.momentum, 0.0, 1.0)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// Whether LpSGD holds `param` on a sphere (SPEC §1.2's exclusions, from the table).
pub fn constrained(param: &ParamInfo) -> bool {
    if param.classifier {
        return false;
    }
    match (param.weight_kind(), param.fans()) {
        (Some(WeightKind::Linear), _) => true,
        (Some(WeightKind::Conv), Some((c_in, _, kh, kw))) => c_in >= 2 && (kh, kw) != (1, 1),
        _ => false,
    }
}

/// LpSGD for one parameter: on its sphere (`p` given) or Nesterov SGD.
#[derive(Clone, Debug)]
pub struct LpSgd {
    /// The sphere's p, if the parameter is constrained.
    p: Option<f64>,
    momentum: f64,
    /// The update of unconstrained parameters.
    free: Sgd,
}

impl LpSgd {
    /// LpSGD on a sphere of exponent `p` (`None`: Nesterov SGD).
    pub fn new(config: &LpSgdConfig, p: Option<f64>) -> Self {
        Self {
            p,
            momentum: config.momentum,
            free: Sgd::new(SgdConfig {
                momentum: config.momentum,
                nesterov: true,
                weight_decay: config.weight_decay,
            }),
        }
    }

    /// The sphere exponent p of this parameter (`None`: unconstrained, Nesterov SGD).
    pub fn sphere_p(&self) -> Option<f64> {
        self.p
    }
}

/// The exponents of the f32 powers the in-place step ([`fused`]) takes per constrained weight on
/// a sphere of exponent `p`: `q = p/(p − 1)` (the direction's q-norm), `p − 1` (the dual map) and
/// `1/(p − 1)` (the primal map, whose power also gives the terms of `‖v_j‖_q`, since
/// `q = 1 + 1/(p − 1)`). Three per weight per step, the largest part of the step's cost
/// (docs/performance.md).
pub fn step_powers(p: f64) -> [f64; 3] {
    [p / (p - 1.0), p - 1.0, 1.0 / (p - 1.0)]
}

impl SparseOptimizer for LpSgd {
    type Config = LpSgdConfig;
    const NAME: &'static str = "lpsgd";
    const SUMMARY: &'static str =
        "unit Lp-sphere SGD: dual update per output unit, p per layer (SPEC §1.2)";
    const PROXIMAL: bool = false;
    const FUSED_BITS_EXACT: bool = false;

    fn new(config: &LpSgdConfig, _regularizer: Option<Arc<dyn Regularizer>>) -> Self {
        LpSgd::new(config, None)
    }

    fn for_param(
        config: &LpSgdConfig,
        _regularizer: Option<Arc<dyn Regularizer>>,
        param: &ParamInfo,
        params: &ParamTable,
    ) -> Result<Self, ConfigError> {
        Ok(LpSgd::new(config, Self::sphere(config, param, params)?))
    }

    fn sphere(
        config: &LpSgdConfig,
        param: &ParamInfo,
        params: &ParamTable,
    ) -> Result<Option<f64>, ConfigError> {
        let layers: Vec<&ParamInfo> = params.iter().filter(|p| constrained(p)).collect();
        match layers.iter().position(|p| p.id == param.id) {
            Some(index) => config.p.of_layer(index, layers.len()).map(Some),
            None => Ok(None),
        }
    }
}

/// Largest magnitude over every axis but `keep` (kept as size-1 axes).
fn max_except(x: Tensor<4>, keep: usize) -> Tensor<4> {
    (0..4)
        .filter(|&axis| axis != keep)
        .fold(x, |acc, axis| acc.max_dim(axis))
}

/// `‖x_j‖_r` of every unit (axis `unit`), computed as `m·‖x/m‖_r` with `m = max|x_j|`; 0 for an
/// all-zero unit.
pub fn unit_norm(x: Tensor<4>, r: f64, unit: usize) -> Tensor<4> {
    let abs = x.abs();
    let m = max_except(abs.clone(), unit);
    let scaled = abs.div(m.clone().clamp_min(f32::MIN_POSITIVE));
    m * Weight::sum_except(scaled.powf_scalar(r), unit).powf_scalar(1.0 / r)
}

/// The dual vector `v = sign(w)⊙|w|^{p−1}`.
pub fn dual<L: Lane>(w: L, p: f64) -> L {
    w.clone().sign() * w.abs().powf(p - 1.0)
}

/// The primal vector `w = sign(v)⊙|v|^{1/(p−1)}` (inverse of [`dual`]).
pub fn primal<L: Lane>(v: L, p: f64) -> L {
    v.clone().sign() * v.abs().powf(1.0 / (p - 1.0))
}

/// Every unit of `w` scaled onto its unit `p` sphere (all-zero units stay 0).
pub fn project(w: Tensor<4>, p: f64, unit: usize) -> Tensor<4> {
    let norm = unit_norm(w.clone(), p, unit);
    w.div(norm.clamp_min(fused::TINY))
}

impl Optimizer for LpSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let Some(p) = self.p else {
            return self.free.step(lr, tensor, grad, state);
        };
        let step = fused::SphereStep {
            p,
            momentum: self.momentum,
            lr,
            first: state.is_none(),
        };
        let operands = fused::Operands {
            tensor,
            grad,
            velocity: state.and_then(|s| s.velocity),
        };
        let (next, velocity) = match fused::step_in_place(&step, operands) {
            Ok(done) => done,
            Err(back) => {
                let fused::Operands {
                    tensor,
                    grad,
                    velocity,
                } = *back;
                Self::sphere_step_tensors(&step, tensor, grad, velocity)
            }
        };
        (next, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Sgd::to_device(state, device)
    }
}

impl LpSgd {
    /// The sphere step as tensor ops (any backend): the reference of [`fused`].
    fn sphere_step_tensors<const D: usize>(
        step: &fused::SphereStep,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        let (p, mu, lr) = (step.p, step.momentum, step.lr);
        let (direction, velocity) = match velocity {
            Some(buf) if mu > 0.0 => {
                let buf = buf.mul_scalar(mu) + grad.clone();
                (grad + buf.clone().mul_scalar(mu), Some(buf))
            }
            _ if mu > 0.0 => (grad.clone() + grad.clone().mul_scalar(mu), Some(grad)),
            _ => (grad, None),
        };
        let q = p / (p - 1.0);
        let w = Weight::from_tensor(tensor);
        let unit = w.layout.output_axis();
        let w0 = if step.first {
            project(w.value.clone(), p, unit)
        } else {
            w.value.clone()
        };
        let d = Weight::from_tensor(direction).value;
        let g_hat = d.clone().div(unit_norm(d, q, unit).add_scalar(1e-6));
        let v = dual(w0, p).mul_scalar(1.0 - lr) - g_hat.mul_scalar(lr);
        let v = v.clone().div(unit_norm(v, q, unit).clamp_min(fused::TINY));
        (w.with_value(primal(v, p)).into_tensor(), velocity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, host};
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    pub(super) fn config(p: f64) -> LpSgdConfig {
        LpSgdConfig {
            p: SphereP::All(p),
            ..LpSgdConfig::default()
        }
    }

    /// A linear weight `[d_in, d_out]`.
    pub(super) fn linear(values: &[f32], d_out: usize) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len() / d_out, d_out]),
            &Device::flex(),
        )
    }

    /// ‖column j‖_p of a host `[d_in, d_out]` matrix, in f64.
    fn column_norms(values: &[f32], d_out: usize, p: f64) -> Vec<f64> {
        (0..d_out)
            .map(|j| {
                values
                    .iter()
                    .skip(j)
                    .step_by(d_out)
                    .map(|v| f64::from(v.abs()).powf(p))
                    .sum::<f64>()
                    .powf(1.0 / p)
            })
            .collect()
    }

    fn steps(opt: &LpSgd, w0: Tensor<2>, grads: &[Tensor<2>], lr: f64) -> Tensor<2> {
        let mut w = w0;
        let mut state = None;
        for g in grads {
            let (next, s) = opt.step(lr, w, g.clone(), state);
            w = next;
            state = s;
        }
        w
    }

    /// The three exponents are the conjugate q (`1/p + 1/q = 1`), the dual map's and its
    /// inverse, and `q = 1 + 1/(p − 1)`, the identity that lets one power serve the primal map
    /// and the q-norm.
    #[test]
    fn step_powers_are_the_conjugate_the_dual_and_its_inverse() {
        for p in [1.07, 1.2, 1.5, 2.0, 3.0] {
            let [q, dual, primal] = step_powers(p);
            assert!((1.0 / p + 1.0 / q - 1.0).abs() < 1e-12, "p = {p}");
            assert!((dual - (p - 1.0)).abs() < 1e-15, "p = {p}");
            assert!((dual * primal - 1.0).abs() < 1e-12, "p = {p}");
            assert!((q - 1.0 - primal).abs() < 1e-12, "p = {p}");
        }
        assert_eq!(step_powers(2.0), [2.0, 1.0, 1.0]);
    }

    #[test]
    fn p_two_dual_is_w_and_the_step_is_normalised_gradient_descent() {
        let w = linear(&[0.6, 0.0, 0.8, 1.0], 2);
        let wv = Weight::from_tensor(w.clone()).value;
        assert_eq!(host(dual(wv.clone(), 2.0)), host(wv));
        // One step without momentum at p = 2, one unit: w ← n((1−η)w − η·g/‖g‖₂), n = ℓ2-normalise.
        let opt = LpSgd::new(
            &LpSgdConfig {
                momentum: 0.0,
                ..config(2.0)
            },
            Some(2.0),
        );
        let (w1, _) = opt.step(0.1, linear(&[0.6, 0.8], 1), linear(&[3.0, -4.0], 1), None);
        let raw: [f32; 2] = [0.9 * 0.6 - 0.1 * 0.6, 0.9 * 0.8 + 0.1 * 0.8];
        let n = (raw[0] * raw[0] + raw[1] * raw[1]).sqrt();
        assert_close(&host(w1), &[raw[0] / n, raw[1] / n], 1e-6);
    }

    #[test]
    fn the_first_step_projects_each_unit_onto_its_sphere() {
        let opt = LpSgd::new(&config(1.5), Some(1.5));
        let (w1, _) = opt.step(
            0.0,
            linear(&[2.0, 0.0, 3.0, 4.0], 2),
            linear(&[0.0; 4], 2),
            None,
        );
        let w1 = host(w1);
        for n in column_norms(&w1, 2, 1.5) {
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
        // Direction kept: column 0 was (2, 3).
        assert!((w1[2] / w1[0] - 1.5).abs() < 1e-5);
    }

    #[test]
    fn conv_filters_are_the_units() {
        let opt = LpSgd::new(&config(1.3), Some(1.3));
        let w = Tensor::<4>::from_data(
            TensorData::new((0..24).map(|i| i as f32 - 11.5).collect(), [2, 3, 2, 2]),
            &Device::flex(),
        );
        let g = Tensor::<4>::from_data(
            TensorData::new(
                (0..24).map(|i| (i % 5) as f32 - 2.0).collect(),
                [2, 3, 2, 2],
            ),
            &Device::flex(),
        );
        let (w1, _) = opt.step(0.1, w, g, None);
        for filter in host(w1).chunks(12) {
            let n: f64 = filter
                .iter()
                .map(|v| f64::from(v.abs()).powf(1.3))
                .sum::<f64>()
                .powf(1.0 / 1.3);
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
    }

    #[test]
    fn small_p_is_stable_and_sparsifies() {
        // p = 1.07: q ≈ 15.3, so unscaled |x|^q would underflow for typical gradients.
        let opt = LpSgd::new(&config(1.07), Some(1.07));
        let w0 = linear(
            &(0..64).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
            1,
        );
        let grads: Vec<Tensor<2>> = (0..50)
            .map(|t| {
                linear(
                    &(0..64)
                        .map(|i| 1e-3 * ((i * 7 + t) as f32 * 0.11).cos())
                        .collect::<Vec<_>>(),
                    1,
                )
            })
            .collect();
        let w = host(steps(&opt, w0, &grads, 0.1));
        assert!(w.iter().all(|v| v.is_finite()));
        assert!((column_norms(&w, 1, 1.07)[0] - 1.0).abs() < 1e-5);
        let hoyer = {
            let l1: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
            let l2: f64 = w.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            (8.0 - l1 / l2) / 7.0
        };
        assert!(
            hoyer > 0.5,
            "p = 1.07 should concentrate the weights: H = {hoyer}"
        );
    }

    /// The exclusions of SPEC §1.2 come from the table: classifier, convs with < 2 input
    /// channels, 1×1 convs, and anything that is not a weight stay free.
    #[test]
    fn exclusions_come_from_the_table() {
        let mut head = ParamInfo::weight(WeightKind::Linear, vec![84, 10]);
        assert!(constrained(&head));
        head.classifier = true;
        assert!(!constrained(&head));
        assert!(!constrained(&ParamInfo::weight(
            WeightKind::Conv,
            vec![6, 1, 5, 5]
        )));
        assert!(!constrained(&ParamInfo::weight(
            WeightKind::Conv,
            vec![32, 16, 1, 1]
        )));
        assert!(constrained(&ParamInfo::weight(
            WeightKind::Conv,
            vec![16, 6, 5, 5]
        )));
        assert!(!constrained(&ParamInfo::new(
            "b",
            sparselab_core::ParamRole::Bias,
            vec![10]
        )));
    }

    #[test]
    fn p_per_layer_rules_and_errors() {
        let table = ParamTable::new(vec![
            ParamInfo::weight(WeightKind::Linear, vec![4, 3]),
            ParamInfo::new("b", sparselab_core::ParamRole::Bias, vec![3]),
            ParamInfo::weight(WeightKind::Linear, vec![3, 3]),
            ParamInfo::weight(WeightKind::Linear, vec![3, 3]),
        ]);
        let ps = |p: SphereP| -> Result<Vec<Option<f64>>, ConfigError> {
            let c = LpSgdConfig {
                p,
                ..LpSgdConfig::default()
            };
            table.iter().map(|x| LpSgd::sphere(&c, x, &table)).collect()
        };
        let split = SphereP::Split {
            first: 2,
            p_first: 1.3,
            p_rest: 1.1,
        };
        assert_eq!(
            ps(split).unwrap(),
            vec![Some(1.3), None, Some(1.3), Some(1.1)]
        );
        assert_eq!(
            ps(SphereP::PerLayer(vec![1.5, 1.4, 1.3])).unwrap(),
            vec![Some(1.5), None, Some(1.4), Some(1.3)]
        );
        let err = ps(SphereP::PerLayer(vec![1.5, 1.4])).unwrap_err();
        assert_eq!(err.key, "p");
        assert!(err.message.contains("3 sphere-constrained layers"), "{err}");
    }

    #[test]
    fn config_rejects_p_at_most_one_or_not_finite() {
        for bad in [1.0, 0.5, f64::NAN, f64::INFINITY] {
            let err = config(bad).validate().unwrap_err();
            assert_eq!(err.key, "p");
            assert!(err.message.contains("p > 1"), "{err}");
        }
        let err = LpSgdConfig {
            p: SphereP::PerLayer(vec![1.2, 1.0]),
            ..LpSgdConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.key, "p");
        let parsed: Result<LpSgdConfig, _> = serde_json::from_value(serde_json::json!({"p": "x"}));
        assert!(
            parsed
                .unwrap_err()
                .to_string()
                .contains("p as a number > 1")
        );
        let split: LpSgdConfig = serde_json::from_value(
            serde_json::json!({"p": {"first": 4, "p_first": 1.2, "p_rest": 1.07}}),
        )
        .unwrap();
        assert_eq!(
            split.p,
            SphereP::Split {
                first: 4,
                p_first: 1.2,
                p_rest: 1.07
            }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every unit has ‖w_j‖_p = 1 after every step, and the step ignores the gradient's scale.
        #[test]
        fn units_stay_on_the_sphere_and_the_step_is_scale_invariant(
            p in 1.05f64..3.0,
            w in proptest::collection::vec(-2.0f32..2.0, 12),
            g in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 12), 1..4),
            scale in 0.1f32..100.0,
            lr in 0.01f64..0.5,
        ) {
            let opt = LpSgd::new(&config(p), Some(p));
            let grads: Vec<Tensor<2>> = g.iter().map(|x| linear(x, 3)).collect();
            let scaled: Vec<Tensor<2>> = g
                .iter()
                .map(|x| linear(&x.iter().map(|v| v * scale).collect::<Vec<_>>(), 3))
                .collect();
            let a = host(steps(&opt, linear(&w, 3), &grads, lr));
            let b = host(steps(&opt, linear(&w, 3), &scaled, lr));
            for (j, n) in column_norms(&a, 3, p).into_iter().enumerate() {
                let column_alive = w.iter().skip(j).step_by(3).any(|v| *v != 0.0)
                    || g.iter().any(|x| x.iter().skip(j).step_by(3).any(|v| *v != 0.0));
                if column_alive {
                    prop_assert!((n - 1.0).abs() < 1e-5, "‖w_{}‖_p = {}", j, n);
                }
            }
            // Scale invariance holds up to the 1e-6 guard in ĝ's denominator.
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((x - y).abs() < 1e-3, "{:?} vs {:?}", a, b);
            }
        }
    }
}
