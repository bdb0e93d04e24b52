//! Reweighted ℓ1's moving average of magnitudes `A ← keep·A + (1 − keep)·|w|` (SPEC §1.1) in
//! place, with its maximum, in one pass at the CPU's widest vector unit: bit for bit the tensor
//! form (`A₀ = 0`, so the first average is `(1 − keep)·|w|`; the maximum of f32 values is exact
//! in any order).

use burn::tensor::Tensor;
use sparselab_core::{fused, widest};

/// The new average of `state` (`None`: the first step) and `w`, with its maximum; `Err` gives
/// the state back where the in-place form does not run (another backend).
#[allow(clippy::result_large_err)]
pub(crate) fn moving_average_in_place(
    state: Option<Tensor<4>>,
    w: &Tensor<4>,
    keep: f64,
) -> Result<(Tensor<4>, f32), Option<Tensor<4>>> {
    let (k, fresh) = (keep as f32, (1.0 - keep) as f32);
    let mut max = f32::NEG_INFINITY;
    let first = state.is_none();
    // The first average is written into a copy of w.
    let [average] =
        fused::update_in_place([state.unwrap_or_else(|| w.clone())], [w], |[a], [w]| {
            let (a, w): (&mut [f32], &[f32]) = (a, w);
            max = if first {
                widest!(update_largest(a, w, move |_, w| w.abs() * fresh))
            } else {
                widest!(update_largest(a, w, move |a, w| a * k + w.abs() * fresh))
            };
        })
        .map_err(|[a]| (!first).then_some(a))?;
    Ok((average, max))
}

/// `values[i] ← f(values[i], others[i])` for every element, returning the largest new value (−∞
/// for none). The maximum is exact in any order, so it is kept over 16 lanes side by side, block
/// by block while each block is in L1: a map loop, then a max loop, each of which vectorises
/// (in one loop, the compiler spilled the new values to the stack and reloaded them, and the
/// pass cost as much as the optimiser's and the prox's together). Call it inside
/// [`widest!`] with `f` moved in.
#[inline(always)]
pub(super) fn update_largest(
    values: &mut [f32],
    others: &[f32],
    f: impl Fn(f32, f32) -> f32 + Copy,
) -> f32 {
    const LANES: usize = sparselab_core::wide::LANES;
    const BLOCK: usize = 64 * LANES;
    let largest = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut max = f32::NEG_INFINITY;
    for (block, others) in values.chunks_mut(BLOCK).zip(others.chunks(BLOCK)) {
        for (v, o) in block.iter_mut().zip(others) {
            *v = f(*v, *o);
        }
        let mut vectors = block.chunks_exact(LANES);
        for vector in &mut vectors {
            for (m, v) in lanes.iter_mut().zip(vector) {
                *m = largest(*m, *v);
            }
        }
        max = vectors.remainder().iter().copied().fold(max, largest);
    }
    lanes.into_iter().fold(max, largest)
}
