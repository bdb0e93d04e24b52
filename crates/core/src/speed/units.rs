//! Per-unit reductions of a weight's elements on the host, for fused updates that need a sum
//! per unit: the group lasso's sums per input unit in ProxSSI's metric prox (SPEC §1.4), in the
//! order burn's CPU backend adds them, and LpSGD's norm per output unit (SPEC §1.2), in pieces
//! that run in parallel.
//!
//! [`crate::Weight::sum_except`]`(x, keep)` sums a rank-4 weight view over every axis but `keep`,
//! one axis at a time in increasing order (`sum_dim`). flex adds the entries of a first or middle
//! axis one after another from 0.0 (a scatter-add of rows), and those of the last axis with SIMD
//! lanes; a last axis shorter than the narrowest SIMD width flex dispatches to (4 lanes of f32:
//! SSE, NEON, WASM) it also adds one after another from 0.0. [`Units::sums`] repeats exactly
//! that, so its sums equal the tensor-op form's bit for bit whenever [`Units::exact`] holds: for
//! every linear weight (last axis of size 1) and conv weights with kernels narrower than 4.
//!
//! [`Units::piece_len`] cuts a weight into pieces of whole unit runs and [`Units::fold_piece`]
//! folds a piece into per-unit values, in an order fixed by the shape alone: a caller that
//! combines the pieces' results in piece order gets the same bits on any number of threads and
//! at any vector width, though not flex's order.

use crate::wide::LANES;
use rayon::prelude::*;

/// The narrowest f32 SIMD width flex's kernels run with.
const NARROWEST_LANES: usize = 4;

/// The fewest elements a piece ([`Units::piece_len`]) gives one task (a piece smaller than this
/// costs more to hand over than to compute).
pub const PIECE: usize = 8192;

/// The units of a rank-4 weight view: the indices of axis `keep`, each owning every element
/// with that index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Units {
    dims: [usize; 4],
    keep: usize,
}

impl Units {
    /// The units along axis `keep` of a `dims` view.
    pub fn new(dims: [usize; 4], keep: usize) -> Self {
        assert!(keep < 4, "axis {keep} of a rank-4 view");
        Self { dims, keep }
    }

    /// How many units there are.
    pub fn count(&self) -> usize {
        self.dims[self.keep]
    }

    /// How many elements the view has.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`Units::sums`] adds in flex's order: the last axis is kept or shorter than the
    /// narrowest SIMD width.
    pub fn exact(&self) -> bool {
        self.keep == 3 || self.dims[3] < NARROWEST_LANES
    }

    /// How many consecutive elements share a unit (the product of the axes after `keep`).
    fn run(&self) -> usize {
        self.dims[self.keep + 1..].iter().product()
    }

    /// How many elements a piece of work holds (the last one may hold fewer), for callers that
    /// split a weight's elements across rayon's pool (`par_chunks(piece_len())`):
    /// whole unit runs, or whole tiles (the fewest rows that fill whole vectors of [`LANES`])
    /// when each unit holds one element per row, at least [`PIECE`] elements. It does not depend
    /// on how many threads run the pieces.
    pub fn piece_len(&self) -> usize {
        let whole = if self.run() == 1 {
            self.tile_len()
        } else {
            self.run()
        };
        PIECE.div_ceil(whole.max(1)) * whole.max(1)
    }

    /// The length of a tile: the fewest whole rows (each one element of every unit) that fill
    /// whole vectors of [`LANES`].
    fn tile_len(&self) -> usize {
        let count = self.count().max(1);
        let (mut a, mut b) = (count, LANES);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        count / a * LANES
    }

    /// `per_unit` repeated over a tile ([`Units::tile_len`] values), for views whose units hold
    /// one element per row: a loop over a tile runs whole vectors, with no remainder per row (on
    /// a layer with rows of 300 units, a remainder of 12 elements cost about as much as the 288
    /// before it when each element takes a power).
    fn tile(&self, per_unit: &[f32]) -> Vec<f32> {
        // Whole copies (a `cycle().take()` iterator cost about 3 ns a value).
        per_unit.repeat(self.tile_len() / per_unit.len().max(1))
    }

    /// Every unit's fold of `f(x, per_unit[u])` over its elements `x` ([`Reduction`]): pieces of
    /// [`Units::piece_len`] elements folded on rayon's current pool ([`Units::fold_piece`], at the
    /// CPU's full vector width), their results combined in piece order. The same bits on any
    /// number of threads. `f` is `Copy` so that each piece's kernel holds its own copy in
    /// registers ([`crate::wide`]'s second trap).
    pub fn par_fold<R: Reduction>(
        &self,
        x: &[f32],
        per_unit: &[f32],
        f: impl Fn(f32, f32) -> f32 + Copy + Sync,
    ) -> Vec<f32> {
        assert_eq!(x.len(), self.len(), "one value per element");
        let (piece, count) = (self.piece_len(), self.count());
        let partials: Vec<Vec<f32>> = x
            .par_chunks(piece)
            .enumerate()
            .map(|(i, values)| {
                let mut acc = vec![R::IDENTITY; count];
                crate::widest!(self.fold_piece::<R>(i * piece, values, per_unit, &mut acc, f));
                acc
            })
            .collect();
        self.merge::<R>(partials)
    }

    /// The pieces' per-unit results (of [`Units::fold_piece`]) combined in piece order.
    pub fn merge<R: Reduction>(&self, partials: Vec<Vec<f32>>) -> Vec<f32> {
        partials
            .into_iter()
            .reduce(|mut a, b| {
                a.iter_mut()
                    .zip(&b)
                    .for_each(|(a, b)| *a = R::combine(*a, *b));
                a
            })
            .unwrap_or_else(|| vec![R::IDENTITY; self.count()])
    }

    /// Calls `f(x, y, value)` for every element of a piece ([`Units::piece_len`]) that starts
    /// at element `start`: `x` is its entry of `piece`, `y` its entry of `other` (the same
    /// elements of another array), `value` its unit's entry of `per_unit`. Plain zipped loops over
    /// rows or runs, without index arithmetic, so the compiler can vectorise `f`.
    #[inline(always)]
    pub fn with_units(
        &self,
        start: usize,
        piece: &mut [f32],
        other: &[f32],
        per_unit: &[f32],
        f: impl Fn(&mut f32, f32, f32) + Copy,
    ) {
        assert_eq!(piece.len(), other.len(), "one value per element");
        let (run, count) = (self.run(), self.count());
        if run == 1 {
            debug_assert_eq!(start % count, 0, "pieces hold whole rows");
            let tile = self.tile(per_unit);
            for (xs, ys) in piece.chunks_mut(tile.len()).zip(other.chunks(tile.len())) {
                for ((x, y), v) in xs.iter_mut().zip(ys).zip(&tile) {
                    f(x, *y, *v);
                }
            }
        } else {
            let runs = piece.chunks_mut(run).zip(other.chunks(run));
            for (r, (values, others)) in runs.enumerate() {
                let v = per_unit[(start / run + r) % count];
                for (x, y) in values.iter_mut().zip(others) {
                    f(x, *y, v);
                }
            }
        }
    }

    /// `Some(run)` when each unit's elements are one run of `run` consecutive elements along a
    /// single axis (the axes before `keep` and all but one after it have size 1, as in a linear
    /// weight `[d_in, d_out, 1, 1]` with units along `d_in`): then [`Units::sums`] is each run's
    /// left fold from 0.0, the order a kernel may reproduce run by run.
    pub fn folded_runs(&self) -> Option<usize> {
        let before = self.dims[..self.keep].iter().product::<usize>();
        let longer = self.dims[self.keep + 1..]
            .iter()
            .filter(|&&n| n > 1)
            .count();
        (before == 1 && longer <= 1 && !self.is_empty()).then(|| self.run())
    }

    /// The runs of consecutive elements that share a unit, in memory order: `(unit, range)`
    /// ([`group_ranges`] with this view's run and unit count).
    pub fn runs(&self) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
        group_ranges(self.len(), self.run(), self.count())
    }

    /// The sum of each unit's `values` (memory order), the axes added one at a time in increasing
    /// order, each one after another from 0.0: flex's `sum_dim` order where [`Units::exact`].
    pub fn sums(&self, values: &[f32]) -> Vec<f32> {
        assert_eq!(values.len(), self.len(), "one value per element");
        if values.is_empty() {
            return vec![0.0; self.count()];
        }
        let mut dims = self.dims;
        let mut current: Option<Vec<f32>> = None;
        for axis in (0..4).filter(|&a| a != self.keep) {
            let rows = dims[axis];
            let inner = dims[axis + 1..].iter().product::<usize>().max(1);
            let outer: usize = dims[..axis].iter().product();
            let mut next = vec![0.0f32; outer * inner];
            let from = current.as_deref().unwrap_or(values);
            if inner == 1 {
                sum_runs(from, rows, &mut next);
            } else {
                let blocks = next
                    .chunks_exact_mut(inner)
                    .zip(from.chunks_exact(rows * inner));
                for (dst, block) in blocks {
                    for row in block.chunks_exact(inner) {
                        for (d, x) in dst.iter_mut().zip(row) {
                            *d += x;
                        }
                    }
                }
            }
            current = Some(next);
            dims[axis] = 1;
        }
        current.unwrap_or_else(|| values.to_vec())
    }

    /// Folds every element `x` of a piece ([`Units::piece_len`]) that starts at element
    /// `start` into its unit's entry of `acc`: `acc[u] = combine(acc[u], f(x, per_unit[u]))`
    /// ([`Reduction`]). Where each unit holds one element per row, the piece is folded tile by
    /// tile (see [`Units::piece_len`]) into one accumulator per tile position (row `i` into the
    /// tile's row `i mod rows`), whose rows then fold into `acc` in order. A longer run is folded into
    /// [`LANES`] lanes (element `i` of the run into lane `i mod 16`), which then fold into `acc`
    /// in lane order. Either order is fixed by the shape alone, not by the vector width.
    #[inline(always)]
    pub fn fold_piece<R: Reduction>(
        &self,
        start: usize,
        piece: &[f32],
        per_unit: &[f32],
        acc: &mut [f32],
        f: impl Fn(f32, f32) -> f32 + Copy,
    ) {
        let combine = R::combine;
        let (run, count) = (self.run(), self.count());
        assert!(
            acc.len() == count && per_unit.len() == count,
            "one entry per unit"
        );
        if run == 1 {
            debug_assert_eq!(start % count, 0, "pieces hold whole rows");
            let tile = self.tile(per_unit);
            let mut lanes = vec![R::IDENTITY; tile.len()];
            for xs in piece.chunks(tile.len()) {
                for ((a, x), v) in lanes.iter_mut().zip(xs).zip(&tile) {
                    *a = combine(*a, f(*x, *v));
                }
            }
            for row in lanes.chunks_exact(count) {
                for (a, l) in acc.iter_mut().zip(row) {
                    *a = combine(*a, *l);
                }
            }
            return;
        }
        for (r, values) in piece.chunks(run).enumerate() {
            let unit = (start / run + r) % count;
            let v = per_unit[unit];
            let mut lanes = [R::IDENTITY; LANES];
            let mut blocks = values.chunks_exact(LANES);
            for block in &mut blocks {
                for (l, x) in lanes.iter_mut().zip(block) {
                    *l = combine(*l, f(*x, v));
                }
            }
            for (l, x) in lanes.iter_mut().zip(blocks.remainder()) {
                *l = combine(*l, f(*x, v));
            }
            acc[unit] = lanes.iter().fold(acc[unit], |a, l| combine(a, *l));
        }
    }
}

/// How [`Units::fold_piece`] combines values: an associative operation and its identity.
pub trait Reduction {
    /// `combine(IDENTITY, x) = x` for every value the fold sees.
    const IDENTITY: f32;
    /// Adds `x` to the running value `a`.
    fn combine(a: f32, x: f32) -> f32;
}

/// The sum (of non-negative values, for which 0.0 is the identity).
pub struct Sum;

impl Reduction for Sum {
    const IDENTITY: f32 = 0.0;
    #[inline(always)]
    fn combine(a: f32, x: f32) -> f32 {
        a + x
    }
}

/// The largest value (of non-negative values), NaN if one is NaN.
pub struct Largest;

impl Reduction for Largest {
    const IDENTITY: f32 = 0.0;
    #[inline(always)]
    fn combine(a: f32, x: f32) -> f32 {
        if x > a || x.is_nan() { x } else { a }
    }
}

/// `sums[k] = ((0 + x[k·run]) + x[k·run + 1]) + …`: each run of `run` consecutive values added in
/// order from 0.0 (flex's order for an axis whose later axes have size 1). Eight runs are summed
/// side by side, so the additions form independent chains, not one long one.
pub fn sum_runs(x: &[f32], run: usize, sums: &mut [f32]) {
    sum_runs_of(x, run, sums, |v| v);
}

/// [`sum_runs`] of `f(x)`: `sums[k] = ((0 + f(x[k·run])) + f(x[k·run + 1])) + …`, without
/// storing the `f(x)` (a group's sum of squares in one read of the weight).
#[inline]
pub fn sum_runs_of(x: &[f32], run: usize, sums: &mut [f32], f: impl Fn(f32) -> f32) {
    assert_eq!(x.len(), run * sums.len(), "one sum per run");
    if run == 0 {
        sums.fill(0.0);
        return;
    }
    let whole = sums.len() / 8 * 8;
    let (blocks, rest) = sums.split_at_mut(whole);
    for (out, block) in blocks.chunks_exact_mut(8).zip(x.chunks_exact(8 * run)) {
        // Eight rows zipped, eight accumulators: registers, no index arithmetic.
        let mut r = block.chunks_exact(run);
        let mut row = || r.next().unwrap_or(&[]);
        let (r0, r1, r2, r3, r4, r5, r6, r7) =
            (row(), row(), row(), row(), row(), row(), row(), row());
        let (mut a0, mut a1, mut a2, mut a3) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        let (mut a4, mut a5, mut a6, mut a7) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        let zipped = r0
            .iter()
            .zip(r1)
            .zip(r2)
            .zip(r3)
            .zip(r4)
            .zip(r5)
            .zip(r6)
            .zip(r7);
        for (((((((x0, x1), x2), x3), x4), x5), x6), x7) in zipped {
            a0 += f(*x0);
            a1 += f(*x1);
            a2 += f(*x2);
            a3 += f(*x3);
            a4 += f(*x4);
            a5 += f(*x5);
            a6 += f(*x6);
            a7 += f(*x7);
        }
        out.copy_from_slice(&[a0, a1, a2, a3, a4, a5, a6, a7]);
    }
    for (out, row) in rest.iter_mut().zip(x[whole * run..].chunks_exact(run)) {
        *out = row.iter().fold(0.0f32, |a, v| a + f(*v));
    }
}

/// Elements `i` of a contiguous tensor of `len` elements belong to group `(i / run) % groups`
/// when the groups are the indices of one axis (`run` = product of the later dims): yields
/// `(group, indices)` for each run of elements that share a group, in memory order.
pub fn group_ranges(
    len: usize,
    run: usize,
    groups: usize,
) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    let run = run.max(1);
    (0..len)
        .step_by(run)
        .enumerate()
        .map(move |(j, start)| (j % groups.max(1), start..(start + run).min(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Weight;
    use burn::tensor::{Device, Tensor, TensorData};
    use proptest::prelude::*;

    fn view(values: &[f32], dims: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), dims), &Device::flex())
    }

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().expect("f32")
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// A linear view `[d_in, d_out, 1, 1]` or a conv view `[o, c, k, k]`, and its unit axis.
    fn shape() -> impl Strategy<Value = ([usize; 4], usize)> {
        prop_oneof![
            (1usize..40, 1usize..12).prop_map(|(i, o)| ([i, o, 1, 1], 1)),
            (1usize..20, 1usize..9, 1usize..6).prop_map(|(o, c, k)| ([o, c, k, k], 0)),
        ]
    }

    fn values(dims: [usize; 4]) -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(
            prop_oneof![Just(0.0f32), Just(-0.0), -1e4f32..1e4],
            dims.iter().product::<usize>(),
        )
    }

    proptest! {
        /// Where `exact` holds, `sums` are `Weight::sum_except`'s bits. `par_fold` gives the
        /// maxima bit for bit and the sums to rounding (its order is its own), the same bits on
        /// one thread or three and at the baseline vector width.
        #[test]
        fn sums_and_folds_equal_flex(
            (dims, keep, x) in shape().prop_flat_map(|(d, k)| (Just(d), Just(k), values(d))),
            scale in 0.5f32..2.0,
        ) {
            let units = Units::new(dims, keep);
            let max = host(
                (0..4)
                    .filter(|&a| a != keep)
                    .fold(view(&x, dims).abs(), |acc, axis| acc.max_dim(axis)),
            );
            let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
            let flex = host(Weight::sum_except(view(&abs, dims), keep));
            if units.exact() {
                prop_assert_eq!(bits(&units.sums(&abs)), bits(&flex));
            }
            let per_unit: Vec<f32> = (0..units.count()).map(|u| scale + u as f32).collect();
            let scaled: Vec<f32> = flex.iter().zip(&per_unit).map(|(s, v)| s * v).collect();
            let folds = || {
                (
                    bits(&units.par_fold::<Largest>(&x, &per_unit, |x, _| x.abs())),
                    bits(&units.par_fold::<Sum>(&x, &per_unit, |x, v| x.abs() * v)),
                )
            };
            let on = |threads: usize, f: &(dyn Fn() -> (Vec<u32>, Vec<u32>) + Sync)| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a pool")
                    .install(f)
            };
            let (largest, sums) = on(1, &folds);
            prop_assert_eq!(&largest, &bits(&max));
            prop_assert_eq!((largest.clone(), sums.clone()), on(3, &folds));
            prop_assert_eq!(
                (largest, sums.clone()),
                on(1, &|| crate::wide::with_baseline(folds))
            );
            // Any order gives nearly the same sums.
            for (a, b) in units.sums(&abs).iter().zip(&flex) {
                prop_assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{} vs {}", a, b);
            }
            for (a, c) in sums.iter().map(|s| f32::from_bits(*s)).zip(&scaled) {
                prop_assert!((a - c).abs() <= 1e-5 * c.abs().max(1.0), "{} vs {}", a, c);
            }
        }
    }

    proptest! {
        /// `sum_runs` adds each run in order from 0.0: a left fold, bit for bit, whatever the
        /// number of runs (eight at a time, then the rest).
        #[test]
        fn sum_runs_is_each_runs_left_fold(
            (run, x) in (1usize..40, 0usize..30).prop_flat_map(|(run, n)| {
                (Just(run), proptest::collection::vec(-1e3f32..1e3, run * n))
            }),
        ) {
            let mut sums = vec![f32::NAN; x.len() / run];
            sum_runs(&x, run, &mut sums);
            let folds: Vec<f32> = x.chunks(run).map(|r| r.iter().fold(0.0f32, |a, v| a + v)).collect();
            prop_assert_eq!(bits(&sums), bits(&folds));
            sum_runs_of(&x, run, &mut sums, |v| v * v);
            let squares: Vec<f32> = x.chunks(run).map(|r| r.iter().fold(0.0f32, |a, v| a + v * v)).collect();
            prop_assert_eq!(bits(&sums), bits(&squares));
        }
    }

    /// `runs` visits every element once, in memory order, with its index along `keep`; and
    /// `with_units` hands each element of a piece (starting at a run boundary) its unit's value.
    #[test]
    fn runs_and_with_units_name_each_elements_unit() {
        let units_of = |units: Units| -> Vec<usize> {
            let mut seen = Vec::new();
            for (u, range) in units.runs() {
                assert_eq!(range.start, seen.len());
                seen.extend(range.map(|_| u));
            }
            seen
        };
        let linear = Units::new([2, 3, 1, 1], 1);
        assert_eq!(units_of(linear), vec![0, 1, 2, 0, 1, 2]);
        let filters = Units::new([3, 2, 1, 2], 0);
        assert_eq!(units_of(filters), vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let channels = Units::new([2, 3, 1, 2], 1);
        assert_eq!(units_of(channels), vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        // A piece from element 4 on (a run boundary of each view): values 10·unit, others 1..
        for (units, start) in [(linear, 3), (filters, 4), (channels, 4)] {
            let all = units_of(units);
            let per_unit: Vec<f32> = (0..units.count()).map(|u| 10.0 * u as f32).collect();
            let mut piece = vec![0.0f32; units.len() - start];
            let other: Vec<f32> = (0..piece.len()).map(|i| i as f32).collect();
            units.with_units(start, &mut piece, &other, &per_unit, |x, y, v| *x = v + y);
            let want: Vec<f32> = (0..piece.len())
                .map(|i| 10.0 * all[start + i] as f32 + i as f32)
                .collect();
            assert_eq!(piece, want, "{units:?} from {start}");
        }
        assert_eq!(Units::new([4, 3, 1, 1], 0).folded_runs(), Some(3));
        assert_eq!(Units::new([1, 4, 3, 1], 1).folded_runs(), Some(3));
        assert_eq!(Units::new([4, 3, 1, 1], 1).folded_runs(), None);
        assert_eq!(Units::new([4, 3, 2, 1], 0).folded_runs(), None);
        assert!(Units::new([4, 3, 1, 1], 1).exact());
        assert!(Units::new([4, 3, 3, 3], 0).exact());
        assert!(!Units::new([4, 3, 5, 5], 0).exact());
    }
}
