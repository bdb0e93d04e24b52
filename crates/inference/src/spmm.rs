//! `Y = W·X` for a sparse `W` ([`Csr`], `[out, in]`) and a dense batch `X` (`[in, batch]`,
//! row-major): `Y[r, :] = Σₖ W[r, cₖ] · X[cₖ, :]` over row `r`'s non-zeros `k`, in their stored
//! order.
//!
//! The batch is the inner dimension: each non-zero scales one contiguous row of `X` into one row
//! of `Y`, a loop compiled for the widest vector unit ([`sparselab_core::wide`]); at batch 1 it
//! is a gathered dot product. Rows are split over the compute pool's threads when the product is
//! large enough to pay for handing work out. Every output entry is summed in the same order
//! whatever the threads or vector width, so the result does not depend on them.

use crate::csr::Csr;
use rayon::prelude::*;
use sparselab_core::widest;

/// Products with fewer multiply-adds run on the calling thread: below this, handing rows to
/// another thread costs more than it saves.
const PARALLEL_MIN: usize = 1 << 15;

/// `y ← W·x` (`x`: `[w.cols, batch]`, `y`: `[w.rows, batch]`, row-major).
///
/// # Panics
/// If the lengths do not fit those shapes.
pub fn spmm(w: &Csr, x: &[f32], batch: usize, y: &mut [f32]) {
    assert_eq!(x.len(), w.cols * batch, "x is [in, batch]");
    assert_eq!(y.len(), w.rows * batch, "y is [out, batch]");
    if batch == 0 || w.rows == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    if threads <= 1 || w.nnz() * batch < PARALLEL_MIN {
        rows(w, x, batch, y, 0);
        return;
    }
    // A few pieces per thread, so a thread that finishes early takes another.
    let per_piece = w.rows.div_ceil(4 * threads).max(1);
    y.par_chunks_mut(per_piece * batch)
        .enumerate()
        .for_each(|(i, piece)| rows(w, x, batch, piece, i * per_piece));
}

/// Rows `first..` of `W·x` into `y` (whole rows of `batch` entries).
fn rows(w: &Csr, x: &[f32], batch: usize, y: &mut [f32], first: usize) {
    let (indptr, indices, values) = (&w.indptr[..], &w.indices[..], &w.values[..]);
    if batch == 1 {
        widest!({
            for (i, out) in y.iter_mut().enumerate() {
                let r = first + i;
                let (start, end) = (indptr[r], indptr[r + 1]);
                let mut acc = 0.0f32;
                for (v, c) in values[start..end].iter().zip(&indices[start..end]) {
                    acc += v * x[*c as usize];
                }
                *out = acc;
            }
        });
        return;
    }
    widest!({
        for (i, out) in y.chunks_exact_mut(batch).enumerate() {
            let r = first + i;
            let (start, end) = (indptr[r], indptr[r + 1]);
            out.fill(0.0);
            for (v, c) in values[start..end].iter().zip(&indices[start..end]) {
                let c = *c as usize;
                let input = &x[c * batch..(c + 1) * batch];
                for (o, xi) in out.iter_mut().zip(input) {
                    *o += v * *xi;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `W·x` summed term by term in stored order, the kernel's specification.
    fn reference(w: &Csr, x: &[f32], batch: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; w.rows * batch];
        for r in 0..w.rows {
            for b in 0..batch {
                let mut acc = 0.0f32;
                for k in w.indptr[r]..w.indptr[r + 1] {
                    acc += w.values[k] * x[w.indices[k] as usize * batch + b];
                }
                y[r * batch + b] = acc;
            }
        }
        y
    }

    fn matrix(rows: usize, cols: usize, density: f64, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..rows * cols)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                if u < density {
                    (u * 7.0 - 2.0) as f32
                } else {
                    0.0
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The kernel computes the reference's bits at every batch, on one thread and on a
        /// pool, at the widest vector unit and the baseline one.
        #[test]
        fn computes_the_reference_bits(
            rows in 1usize..70,
            cols in 1usize..70,
            batch in 1usize..40,
            density in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let w = Csr::from_dense(&matrix(rows, cols, density, seed), rows);
            let x = matrix(cols, batch, 1.0, seed ^ 0xabcd);
            let expected = reference(&w, &x, batch);
            let mut y = vec![f32::NAN; rows * batch];
            spmm(&w, &x, batch, &mut y);
            prop_assert_eq!(&y, &expected);
            let mut narrow = vec![f32::NAN; rows * batch];
            sparselab_core::wide::with_baseline(|| rows_only(&w, &x, batch, &mut narrow));
            prop_assert_eq!(&narrow, &expected);
        }
    }

    fn rows_only(w: &Csr, x: &[f32], batch: usize, y: &mut [f32]) {
        rows(w, x, batch, y, 0);
    }

    /// A product large enough to be split over threads gives the one-thread bits.
    #[test]
    fn threads_do_not_change_the_bits() {
        let (rows, cols, batch) = (300, 784, 128);
        let w = Csr::from_dense(&matrix(rows, cols, 0.1, 7), rows);
        let x = matrix(cols, batch, 1.0, 8);
        assert!(w.nnz() * batch >= PARALLEL_MIN);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut y = vec![0.0; rows * batch];
        pool.install(|| spmm(&w, &x, batch, &mut y));
        assert_eq!(y, reference(&w, &x, batch));
    }
}
