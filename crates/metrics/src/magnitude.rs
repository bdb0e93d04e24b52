//! Histogram of weight magnitudes on a log scale (the form of CKA-SR's Figs. 1-3, SPEC.md §1.3:
//! weights concentrate near 0 as β grows).
//!
//! Bins of `log10|w|` of width [`BIN`] decades from [`LOW`] to [`HIGH`]; magnitudes outside fall
//! into the first or last bin. Exact zeros are counted apart (they are the masks' and proxes'
//! sparsity, not the distribution of the surviving weights).

use serde::{Deserialize, Serialize};

/// Lower edge, `log10|w|`.
pub const LOW: f64 = -6.0;
/// Upper edge, `log10|w|`.
pub const HIGH: f64 = 1.0;
/// Bin width in decades.
pub const BIN: f64 = 0.125;

/// Counts of non-zero weight magnitudes per log bin, plus exact zeros.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MagnitudeHistogram {
    /// Lower edge of the first bin (`log10|w|`).
    pub low: f64,
    /// Bin width (decades).
    pub bin: f64,
    /// Non-zero weights per bin.
    pub counts: Vec<u64>,
    /// Weights that are exactly 0.0.
    pub zeros: u64,
}

impl MagnitudeHistogram {
    /// The histogram of every value in `tensors`.
    pub fn of<'a>(tensors: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let bins = ((HIGH - LOW) / BIN).round() as usize;
        let mut h = Self {
            low: LOW,
            bin: BIN,
            counts: vec![0; bins],
            zeros: 0,
        };
        for &v in tensors.into_iter().flatten() {
            if v == 0.0 {
                h.zeros += 1;
                continue;
            }
            let at = ((f64::from(v.abs()).log10() - LOW) / BIN).floor();
            h.counts[(at.max(0.0) as usize).min(bins - 1)] += 1;
        }
        h
    }

    /// Fraction of the non-zero weights whose bin lies wholly below `|w| = 10^log10_t` (`t` is
    /// rounded down to a bin edge); `None` without non-zero weights.
    pub fn share_below(&self, log10_t: f64) -> Option<f64> {
        let total = self.counts.iter().sum::<u64>();
        (total > 0).then(|| {
            let below: u64 = self
                .counts
                .iter()
                .enumerate()
                .filter(|(i, _)| self.low + (*i as f64 + 1.0) * self.bin <= log10_t + 1e-9)
                .map(|(_, c)| c)
                .sum();
            below as f64 / total as f64
        })
    }

    /// `(bin centre |w|, fraction of the non-zero weights in the bin)` for every bin.
    pub fn fractions(&self) -> Vec<(f64, f64)> {
        let total = self.counts.iter().sum::<u64>().max(1) as f64;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let centre = 10f64.powf(self.low + (i as f64 + 0.5) * self.bin);
                (centre, c as f64 / total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_zeros_and_clamping() {
        let a = [0.0f32, 1e-3, -1e-3, 0.5];
        let b = [1e-9f32, 100.0, 0.0];
        let h = MagnitudeHistogram::of([&a[..], &b[..]]);
        assert_eq!(h.zeros, 2);
        assert_eq!(h.counts.len(), 56);
        assert_eq!(h.counts.iter().sum::<u64>(), 5);
        // 1e-3: log10 = −3 → bin (−3 + 6)/0.125 = 24; both signs land there.
        assert_eq!(h.counts[24], 2);
        // 0.5: log10 ≈ −0.301 → bin 45.
        assert_eq!(h.counts[45], 1);
        // below the range into the first bin, above into the last.
        assert_eq!((h.counts[0], h.counts[55]), (1, 1));
        // Below 1e-2: the bins of 1e-9 (clamped into bin 0) and of ±1e-3 → 3 of 5.
        assert_eq!(h.share_below(-2.0), Some(0.6));
        assert_eq!(
            MagnitudeHistogram::of([&[0.0f32][..]]).share_below(-2.0),
            None
        );
        let f = h.fractions();
        assert!((f.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((f[24].0 - 10f64.powf(-3.0 + 0.0625)).abs() < 1e-12);
    }
}
