//! ProxSSI's group prox (SPEC §1.4, [`crate::prox::group_prox_diagonal`]) for groups that are
//! runs of consecutive elements (a linear weight's input neurons), sixteen groups at a time in
//! SIMD lanes.
//!
//! The Newton solve sums two terms over every group on each of its steps, and the tensor form
//! adds a group's terms one after another ([`sparselab_core::Units::sums`]): a chain of
//! additions per group, which one group at a time cannot spread over vector lanes. Here a block
//! of sixteen groups is first copied transposed, element `j` of group `i` at `j·16 + i`; then
//! every pass runs down the block sixteen groups wide, each lane adding its own group's terms in
//! the tensor form's order, and all Newton steps of the block reuse the copy while it sits in
//! cache. Blocks are independent, so pieces of whole blocks run in parallel on rayon's current
//! pool (the training pool). Per element and per group the f32 operations are those of
//! [`super`] ([`Root`], [`newton_terms`], [`write_group`]), so the result is
//! the same bit for bit, on any number of threads (tested).

use super::newton::{Root, newton_terms, settled, write_group};
use rayon::prelude::*;
// Groups per block: one AVX-512 register of f32.
use sparselab_core::wide::LANES;
use sparselab_core::widest;
use std::cell::RefCell;

/// Values per parallel piece (whole blocks, at least one): a few microseconds of Newton steps,
/// so handing a piece to the pool's other thread costs little against it.
const PIECE_VALUES: usize = 16_384;

thread_local! {
    /// Each thread's three transposed work arrays of one block, kept between calls.
    static BLOCK: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// `x` holds `z` (`x.len() / run` groups of `run` consecutive elements) and becomes the prox in
/// the metric `d`; `t = θ√|g|`, `d_max = max d`. Blocks of sixteen groups are independent, so
/// pieces of whole blocks run in parallel on rayon's current pool: the same bits on any number
/// of threads.
pub(crate) fn solve_runs(
    x: &mut [f32],
    d: &[f32],
    run: usize,
    (t, d_max): (f64, f32),
    iterations: usize,
) {
    let block = run * LANES;
    let piece = piece_len(run);
    x.par_chunks_mut(piece)
        .zip(d.par_chunks(piece))
        .for_each(|(x, d)| {
            BLOCK.with_borrow_mut(|[zt, dt, st]| {
                for v in [&mut *zt, &mut *dt, &mut *st] {
                    v.resize(block, 0.0);
                }
                widest!(solve_blocks(
                    x,
                    d,
                    run,
                    (t, d_max),
                    iterations,
                    [zt, dt, st]
                ));
            });
        });
}

/// Values per parallel piece for groups of `run` elements: the whole blocks of sixteen groups
/// that fit in [`PIECE_VALUES`], at least one.
fn piece_len(run: usize) -> usize {
    let block = run * LANES;
    block * (PIECE_VALUES / block).max(1)
}

#[inline(always)]
fn solve_blocks(
    x: &mut [f32],
    d: &[f32],
    run: usize,
    (t, d_max): (f64, f32),
    iterations: usize,
    [zt, dt, st]: [&mut [f32]; 3],
) {
    let block = run * LANES;
    for (xs, ds) in x.chunks_mut(block).zip(d.chunks(block)) {
        transpose_in(xs, ds, run, [zt, dt]);
        let (dz_norm, roots) = solve_block([zt, dt, st], (t, d_max), iterations);
        let groups = xs.chunks_exact_mut(run).zip(ds.chunks_exact(run));
        for ((x, d), (dz_norm, root)) in groups.zip(dz_norm.iter().zip(&roots)) {
            write_group(x, d, *dz_norm, root.mu, t);
        }
    }
}

/// Copies the groups of `z` and `d` (up to sixteen runs) transposed into `zt` and `dt`, row by
/// row of the copy (sixteen reads from sixteen runs, one contiguous write); lanes without a
/// group get `z = 0`, `d = 1` (a zero group, finite throughout, never written back).
#[inline(always)]
fn transpose_in(z: &[f32], d: &[f32], run: usize, [zt, dt]: [&mut [f32]; 2]) {
    let groups = z.len() / run;
    let (zt, dt) = (rows_mut(zt), rows_mut(dt));
    if groups == LANES {
        // Sixteen runs as slices of exactly `run` values: the reads below need no bounds checks.
        let zs: [&[f32]; LANES] = std::array::from_fn(|lane| &z[lane * run..][..run]);
        let ds: [&[f32]; LANES] = std::array::from_fn(|lane| &d[lane * run..][..run]);
        for (j, (zr, dr)) in zt.iter_mut().zip(dt.iter_mut()).enumerate().take(run) {
            for lane in 0..LANES {
                zr[lane] = zs[lane][j];
                dr[lane] = ds[lane][j];
            }
        }
        return;
    }
    for (j, (zr, dr)) in zt.iter_mut().zip(dt.iter_mut()).enumerate() {
        for lane in 0..LANES {
            (zr[lane], dr[lane]) = if lane < groups {
                (z[lane * run + j], d[lane * run + j])
            } else {
                (0.0, 1.0)
            };
        }
    }
}

/// A transposed block as rows of sixteen lanes (fixed-size arrays: no bounds checks in the lane
/// loops, which then vectorise).
#[inline(always)]
fn rows(block: &[f32]) -> &[[f32; LANES]] {
    block.as_chunks::<LANES>().0
}

#[inline(always)]
fn rows_mut(block: &mut [f32]) -> &mut [[f32; LANES]] {
    block.as_chunks_mut::<LANES>().0
}

/// The Newton solve of one transposed block: `‖D z‖` and the root of each lane's group.
#[inline(always)]
fn solve_block(
    [zt, dt, st]: [&mut [f32]; 3],
    (t, d_max): (f64, f32),
    iterations: usize,
) -> ([f32; LANES], [Root; LANES]) {
    let (mut dz_squares, mut z_squares) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (st, dt, zt) = (rows_mut(st), rows(dt), rows(zt));
    for ((s, d), z) in st.iter_mut().zip(dt).zip(zt) {
        for lane in 0..LANES {
            let dz = d[lane] * z[lane];
            s[lane] = dz * dz;
            dz_squares[lane] += s[lane];
            z_squares[lane] += z[lane] * z[lane];
        }
    }
    let dz_norm = dz_squares.map(f32::sqrt);
    let mut roots: [Root; LANES] =
        std::array::from_fn(|lane| Root::start(dz_norm[lane], z_squares[lane], t, d_max));
    for _ in 0..iterations {
        let mu: [f32; LANES] = std::array::from_fn(|lane| roots[lane].mu);
        let (mut x_squares, mut curvature) = ([0.0f32; LANES], [0.0f32; LANES]);
        for (s, d) in st.iter().zip(dt) {
            for lane in 0..LANES {
                let (a, b) = newton_terms(s[lane], d[lane], mu[lane]);
                x_squares[lane] += a;
                curvature[lane] += b;
            }
        }
        for (lane, root) in roots.iter_mut().enumerate() {
            root.newton(x_squares[lane], curvature[lane], t);
        }
        if settled(&mu, roots.iter().map(|r| r.mu), &dz_norm, t) {
            break;
        }
    }
    (dz_norm, roots)
}

#[cfg(test)]
mod tests {
    use crate::prox::group_prox_diagonal;
    use crate::testing::host;
    use burn::tensor::{Device, Tensor, TensorData};
    use proptest::prelude::*;
    use sparselab_core::{Layout, Units, fused, wide};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Linear weights of up to 40 input neurons (two full blocks of sixteen groups and a
        /// partial one), thresholds that zero some groups and shrink others: the lane solve
        /// gives the tensor ops' bits, at every vector width.
        #[test]
        fn lane_solve_equals_tensor_ops_bit_for_bit(
            (dims, z, d) in (1usize..41, 1usize..24).prop_flat_map(|(i, o)| (
                Just([i, o, 1, 1]),
                proptest::collection::vec(prop_oneof![Just(0.0f32), Just(-0.0), -2.0f32..2.0], i * o),
                proptest::collection::vec(0.01f32..50.0, i * o),
            )),
            theta in 0.0f64..20.0,
        ) {
            prop_assert_eq!(Units::new(dims, 0).folded_runs(), Some(dims[1]));
            let tensor = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &Device::flex());
            let prox = || {
                let x = host(group_prox_diagonal(tensor(&z), tensor(&d), Layout::Linear, theta, 5));
                x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let lanes = prox();
            // On a one-thread pool: the pieces run on the pool's thread, which `with_baseline`
            // must mark.
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            prop_assert_eq!(&lanes, &one.install(|| wide::with_baseline(prox)));
            prop_assert_eq!(&lanes, &fused::with_tensor_ops(prox));
        }
    }

    /// A weight of several parallel pieces and a partial last block (301 input neurons of 100
    /// outputs: 30 100 values, pieces of 16 000), solved on a pool of three threads, on one
    /// thread and as tensor ops: the same bits, with groups both zeroed and shrunk.
    #[test]
    fn parallel_pieces_give_the_tensor_ops_bits() {
        let (rows, cols) = (301usize, 100usize);
        let dims = [rows, cols, 1, 1];
        let piece = super::piece_len(cols);
        assert!(rows * cols > piece + 16 * cols, "more than one piece");
        assert!(rows % 16 != 0, "a partial last block");
        // Row i scaled by (i mod 10)/10, so small rows fall under the threshold.
        let z: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7_919 % 1_000) as f32 / 250.0 - 2.0) * ((i / cols) % 10) as f32 / 10.0)
            .collect();
        let d: Vec<f32> = (0..rows * cols)
            .map(|i| 0.01 + (i * 104_729 % 997) as f32 / 20.0)
            .collect();
        let tensor =
            |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &Device::flex());
        let prox = || {
            host(group_prox_diagonal(
                tensor(&z),
                tensor(&d),
                Layout::Linear,
                15.0,
                5,
            ))
        };
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(prox)
        };
        let bits = |x: Vec<f32>| x.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let parallel = on(3);
        let zero_rows = parallel
            .chunks(cols)
            .filter(|r| r.iter().all(|x| *x == 0.0))
            .count();
        assert!(
            zero_rows > 0 && zero_rows < rows,
            "{zero_rows} of {rows} groups zeroed"
        );
        assert_eq!(bits(parallel.clone()), bits(on(1)));
        assert_eq!(bits(parallel), bits(fused::with_tensor_ops(prox)));
    }
}
