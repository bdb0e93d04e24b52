//! `aug-cka-sr`: the variant of CKA-SR that also compares blocks across stages (SPEC.md §1.3).
//!
//! ```text
//! L = L_task + β · mean_{i<j over all blocks of all stages} CKA(X_i, X_j)
//! ```
//!
//! with the biased linear CKA ([`linear_cka`], columns centred) on the first `samples` examples
//! of the batch. Blocks of different stages have different widths, which linear CKA allows.
//! Hyperparameters and cost controls are those of `cka-sr` ([`CkaSrConfig`]).

use crate::cka_sr::CkaSrConfig;
use crate::loss_term::{LossTerm, StageFeatures};
use burn::tensor::Tensor;
use sparselab_core::FromConfig;
use sparselab_metrics::cka::linear_cka;

/// The cross-stage CKA-SR loss term.
#[derive(Clone, Debug)]
pub struct AugCkaSr {
    config: CkaSrConfig,
}

impl FromConfig<dyn LossTerm> for AugCkaSr {
    type Config = CkaSrConfig;
    const NAME: &'static str = "aug-cka-sr";
    const SUMMARY: &'static str =
        "CKA-SR across stages: β·mean over all block pairs of biased linear CKA (SPEC §1.3)";

    fn from_config(config: CkaSrConfig) -> Box<dyn LossTerm> {
        Box::new(AugCkaSr { config })
    }
}

impl LossTerm for AugCkaSr {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn every(&self) -> usize {
        self.config.every
    }

    fn loss(&self, features: &StageFeatures) -> Option<Tensor<1>> {
        let blocks: Vec<Tensor<2>> = features
            .iter()
            .flatten()
            .filter_map(|x| self.config.subset(x))
            .collect();
        let mut sum: Option<Tensor<1>> = None;
        let mut pairs = 0usize;
        for i in 0..blocks.len() {
            for j in (i + 1)..blocks.len() {
                let c = linear_cka(blocks[i].clone(), blocks[j].clone());
                sum = Some(match sum {
                    Some(s) => s + c,
                    None => c,
                });
                pairs += 1;
            }
        }
        sum.map(|s| s.mul_scalar(self.config.beta / pairs as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn x(rows: usize, cols: usize, f: impl Fn(usize) -> f32) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new((0..rows * cols).map(f).collect::<Vec<_>>(), [rows, cols]),
            &Device::flex(),
        )
    }

    /// Three blocks in two stages: β times the mean of all three pairs, across stages too.
    #[test]
    fn mean_over_all_pairs_across_stages() {
        let a = x(8, 3, |i| ((i * 7) % 11) as f32);
        let b = x(8, 4, |i| ((i * 5) % 13) as f32);
        let c = x(8, 2, |i| (i as f32).sin());
        let cka =
            |p: &Tensor<2>, q: &Tensor<2>| linear_cka(p.clone(), q.clone()).into_scalar::<f64>();
        let expected = 2.0 * (cka(&a, &b) + cka(&a, &c) + cka(&b, &c)) / 3.0;
        let term = AugCkaSr {
            config: CkaSrConfig {
                beta: 2.0,
                samples: 0,
                every: 1,
            },
        };
        let got = term
            .loss(&[vec![a.clone(), b], vec![c]])
            .unwrap()
            .into_scalar::<f64>();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        assert!(term.loss(&[vec![a]]).is_none());
    }
}
