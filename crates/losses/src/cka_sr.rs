//! `cka-sr`: CKA-SR, the sparsity regulariser of Ni et al. (arXiv 2307.07389; SPEC.md §1.3).
//!
//! ```text
//! L = L_task + β · Σ_stages Σ_{i<j in stage} CKA₁(X_i, X_j)
//! ```
//!
//! `X_i` is block i's output on the first `samples` examples of the batch, flattened to
//! `[m, C·H·W]`; `CKA₁` is the unbiased (HSIC₁) linear CKA of one batch on the Gram matrices
//! `K_i = X_i X_iᵀ` (m ≪ C·H·W, so the Gram form is the cheap one). HSIC₁ does not change when
//! the features are centred, but in f32 it matters: ReLU features share a large positive mean
//! that dominates the raw Gram entries, and HSIC₁'s terms then cancel catastrophically (value
//! noise of ~1e-3 on a 5-wide test net). Columns are therefore centred over the m rows first. CKA is never taken across
//! stages. The term is computed on steps 1, 1 + `every`, …; on the other steps the engine runs
//! the model without feature taps. Gradients flow through every block by autodiff.
//!
//! Pairs: the reference code sums CKA over all ordered pairs (i, j) including i = j, which is
//! `2·Σ_{i<j} + (number of blocks)` — twice our sum plus a constant with no gradient. So its β
//! equals twice ours; we use the i < j form, as SPEC §1.3 says.
//!
//! `samples = 0` means the whole batch, and with `every = 1` that is "full CKA-SR". A batch with
//! fewer than 4 rows (where HSIC₁ is undefined) contributes no term.

use crate::loss_term::{LossTerm, StageFeatures};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sparselab_core::config::check_non_negative;
use sparselab_core::{ConfigError, FromConfig, Validate};
use sparselab_metrics::cka::{center_columns, cka_unbiased, gram_linear};

/// Hyperparameters of [`CkaSr`] (and of `aug-cka-sr`, which shares them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CkaSrConfig {
    /// Strength β (SPEC §1.3: 1e-4 on CIFAR).
    pub beta: f64,
    /// Examples of the batch the term is computed on, `m` (0: the whole batch).
    pub samples: usize,
    /// Steps between evaluations, `b`.
    pub every: usize,
}

impl Default for CkaSrConfig {
    fn default() -> Self {
        Self {
            beta: 1e-4,
            samples: 8,
            every: 5,
        }
    }
}

impl Validate for CkaSrConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("beta", self.beta)?;
        if self.every == 0 {
            return Err(ConfigError::out_of_range("every", 0, "every >= 1"));
        }
        if (1..4).contains(&self.samples) {
            return Err(ConfigError::out_of_range(
                "samples",
                self.samples,
                "samples >= 4 (the unbiased HSIC needs n > 3), or 0 for the whole batch",
            ));
        }
        Ok(())
    }
}

impl CkaSrConfig {
    /// The first `samples` rows of `x` (all of them for `samples = 0`); `None` below 4 rows.
    pub fn subset(&self, x: &Tensor<2>) -> Option<Tensor<2>> {
        let n = x.dims()[0];
        let m = if self.samples == 0 {
            n
        } else {
            self.samples.min(n)
        };
        (m >= 4).then(|| x.clone().narrow(0, 0, m))
    }
}

/// The CKA-SR loss term.
#[derive(Clone, Debug)]
pub struct CkaSr {
    config: CkaSrConfig,
}

impl FromConfig<dyn LossTerm> for CkaSr {
    type Config = CkaSrConfig;
    const NAME: &'static str = "cka-sr";
    const SUMMARY: &'static str = "CKA-SR: β·Σ_stages Σ_{i<j} unbiased CKA between block features, on m samples every b steps (SPEC §1.3)";

    fn from_config(config: CkaSrConfig) -> Box<dyn LossTerm> {
        Box::new(CkaSr { config })
    }
}

impl LossTerm for CkaSr {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn every(&self) -> usize {
        self.config.every
    }

    fn loss(&self, features: &StageFeatures) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        for stage in features {
            let grams: Vec<Tensor<2>> = stage
                .iter()
                .filter_map(|x| self.config.subset(x))
                .map(|x| gram_linear(center_columns(x)))
                .collect();
            for i in 0..grams.len() {
                for j in (i + 1)..grams.len() {
                    let Some(c) = cka_unbiased(grams[i].clone(), grams[j].clone()) else {
                        continue;
                    };
                    total = Some(match total {
                        Some(t) => t + c,
                        None => c,
                    });
                }
            }
        }
        total.map(|t| t.mul_scalar(self.config.beta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn term(beta: f64, samples: usize) -> CkaSr {
        CkaSr {
            config: CkaSrConfig {
                beta,
                samples,
                every: 1,
            },
        }
    }

    fn x(rows: usize, cols: usize, f: impl Fn(usize) -> f32) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new((0..rows * cols).map(f).collect::<Vec<_>>(), [rows, cols]),
            &Device::flex(),
        )
    }

    /// Two stages: the value is β times the sum of the within-stage pairs' CKA₁, computed on the
    /// first m rows only; nothing across stages.
    #[test]
    fn sums_within_stage_pairs_on_the_first_samples() {
        let a = x(10, 3, |i| ((i * 7) % 11) as f32);
        let b = x(10, 4, |i| ((i * 5) % 13) as f32 - 3.0);
        let c = x(10, 2, |i| ((i * 3) % 7) as f32);
        let d = x(10, 5, |i| (i as f32).sin());
        let e = x(10, 5, |i| (i as f32).cos());
        let features = vec![
            vec![a.clone(), b.clone(), c.clone()],
            vec![d.clone(), e.clone()],
        ];
        let first6 = |t: &Tensor<2>| gram_linear(center_columns(t.clone().narrow(0, 0, 6)));
        let pair = |p: &Tensor<2>, q: &Tensor<2>| {
            cka_unbiased(first6(p), first6(q))
                .unwrap()
                .into_scalar::<f64>()
        };
        let expected = 0.5 * (pair(&a, &b) + pair(&a, &c) + pair(&b, &c) + pair(&d, &e));
        let got = term(0.5, 6).loss(&features).unwrap().into_scalar::<f64>();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // samples = 0 takes the whole batch, and changes the value.
        let full = term(0.5, 0).loss(&features).unwrap().into_scalar::<f64>();
        assert!((full - got).abs() > 1e-4);
    }

    #[test]
    fn nothing_to_penalise_without_pairs_or_rows() {
        let a = x(10, 3, |i| i as f32);
        assert!(term(1.0, 8).loss(&[vec![a.clone()]]).is_none());
        let small = a.narrow(0, 0, 3);
        assert!(term(1.0, 0).loss(&[vec![small.clone(), small]]).is_none());
    }

    #[test]
    fn samples_below_four_are_rejected() {
        let bad = CkaSrConfig {
            samples: 3,
            ..CkaSrConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("samples"), "{err}");
        for ok in [0, 4, 8] {
            assert!(
                CkaSrConfig {
                    samples: ok,
                    ..CkaSrConfig::default()
                }
                .validate()
                .is_ok()
            );
        }
    }
}
