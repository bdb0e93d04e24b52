//! Weight decay added to the gradient, `d = g + wd·w`: the one form every optimiser with a
//! `weight_decay` key in the L2 sense takes (`sgd`, `proxsgd`, `xrda`; ProxSSI's AdamW step
//! decays the weights themselves), as burn-optim composes its `WeightDecay` into each
//! optimiser. Written against [`Lane`], so it runs inside a fused update as well as on tensors.

use sparselab_core::Lane;

/// The L2 penalty `wd` (0: none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightDecay(pub f64);

impl WeightDecay {
    /// `g + wd·w`; `g` itself when `wd` = 0, so a run without decay does no extra operation (and
    /// no extra rounding).
    #[inline(always)]
    pub fn apply<L: Lane>(self, g: L, w: &L) -> L {
        if self.0 > 0.0 {
            g + w.clone().mul_scalar(self.0)
        } else {
            g
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_decayed_weight_or_nothing() {
        assert_eq!(WeightDecay(0.5).apply(1.0f32, &2.0), 2.0);
        // Without decay the gradient passes through unchanged, -0.0 and NaN included.
        assert_eq!(
            WeightDecay(0.0).apply(-0.0f32, &f32::NAN).to_bits(),
            (-0.0f32).to_bits()
        );
        // The penalty is rounded to f32 before the product, as burn's `mul_scalar` rounds it.
        let wd = 1e-4;
        assert_eq!(WeightDecay(wd).apply(0.0f32, &3.0), 3.0 * wd as f32);
    }
}
