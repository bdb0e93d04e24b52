//! Exact-count mask selection.
//!
//! Pruning to sparsity `s` keeps exactly `n − ⌊s·n⌋` elements: ties in magnitude are broken by
//! position, so the count never drifts and results are deterministic.

use sparselab_core::rng::ChaCha8Rng;
use sparselab_core::rng::index;

/// Number of elements pruned at sparsity `s` out of `n`: `⌊s·n⌋`, computed robustly against
/// float error (`0.9 · 10` is 9, not 8).
pub fn pruned_count(sparsity: f64, n: usize) -> usize {
    let x = sparsity * n as f64;
    let r = x.round();
    let k = if (x - r).abs() < 1e-9 { r } else { x.floor() };
    (k.max(0.0) as usize).min(n)
}

/// Keeps the `keep` elements with the largest `scores` (ties: lower index first).
pub fn top_k(scores: &[f32], keep: usize) -> Vec<bool> {
    let mut mask = vec![false; scores.len()];
    if keep == 0 {
        return mask;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let by_score_desc = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if keep < order.len() {
        order.select_nth_unstable_by(keep - 1, by_score_desc);
    }
    for &i in order.iter().take(keep) {
        mask[i] = true;
    }
    mask
}

/// A uniformly random mask with exactly `keep` of `n` elements kept.
pub fn random_k(n: usize, keep: usize, rng: &mut ChaCha8Rng) -> Vec<bool> {
    let mut mask = vec![false; n];
    for i in index::sample(rng, n, keep.min(n)) {
        mask[i] = true;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sparselab_core::rng::stream;

    #[test]
    fn pruned_count_is_exact_on_round_products() {
        assert_eq!(pruned_count(0.9, 10), 9);
        assert_eq!(pruned_count(0.95, 100), 95);
        assert_eq!(pruned_count(0.5, 3), 1);
        assert_eq!(pruned_count(0.0, 7), 0);
        assert_eq!(pruned_count(1.0, 7), 7);
    }

    #[test]
    fn top_k_keeps_largest_and_breaks_ties_by_position() {
        assert_eq!(
            top_k(&[0.1, 3.0, 2.0, 3.0], 2),
            vec![false, true, false, true]
        );
        assert_eq!(top_k(&[1.0, 1.0, 1.0], 2), vec![true, true, false]);
        assert_eq!(top_k(&[1.0, 2.0], 0), vec![false, false]);
        assert_eq!(top_k(&[1.0, 2.0], 2), vec![true, true]);
    }

    proptest! {
        #[test]
        fn top_k_count_and_order(scores in proptest::collection::vec(-5.0f32..5.0, 1..64), frac in 0.0f64..1.0) {
            let keep = ((scores.len() as f64) * frac) as usize;
            let mask = top_k(&scores, keep);
            prop_assert_eq!(mask.iter().filter(|k| **k).count(), keep);
            let min_kept = scores.iter().zip(&mask).filter(|(_, k)| **k).map(|(s, _)| *s).fold(f32::INFINITY, f32::min);
            let max_dropped = scores.iter().zip(&mask).filter(|(_, k)| !**k).map(|(s, _)| *s).fold(f32::NEG_INFINITY, f32::max);
            prop_assert!(keep == 0 || keep == scores.len() || min_kept >= max_dropped);
        }

        #[test]
        fn random_k_keeps_exactly_k(n in 1usize..200, frac in 0.0f64..1.0, seed in 0u64..1000) {
            let keep = ((n as f64) * frac) as usize;
            let mask = random_k(n, keep, &mut stream(seed, "test"));
            prop_assert_eq!(mask.iter().filter(|k| **k).count(), keep);
        }
    }
}
