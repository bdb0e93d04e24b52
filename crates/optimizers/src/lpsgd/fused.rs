//! LpSGD's sphere step as a few passes over the f32 storage on the CPU backend (SPEC §1.2).
//!
//! The tensor-op form ([`super::LpSgd`]'s `step`) makes about twenty passes over memory,
//! allocates a tensor for each, and takes its four powers per element with libm's `powf`, one
//! call per value. This form computes, per element,
//!
//! ```text
//! buf ← μ·buf + g,  d = g + μ·buf                  (first step: buf = g)
//! w₀ = w / max(‖w_j‖_p, tiny)                      (first step only)
//! v = (1 − η)·sign(w₀)|w₀|^{p−1} − η·d/(‖d_j‖_q + 1e-6)
//! u = |v/m_j|^{1/(p−1)},  S_j = Σ_j |v/m_j|·u       (m_j the unit's largest |v|)
//! w ← sign(v)·u·S_j^{−1/p}
//! ```
//!
//! The last two lines are the tensor-op form's `w = sign(v/‖v_j‖_q)·|v/‖v_j‖_q|^{1/(p−1)}`
//! with one power fewer: since `q = p/(p−1) = 1 + 1/(p−1)`, `|x|^q = |x|·|x|^{1/(p−1)}`, so the
//! power of the primal map also gives the terms of `‖v_j‖_q`, and `(m_j/‖v_j‖_q)^{1/(p−1)} =
//! S_j^{−1/(q(p−1))} = S_j^{−1/p}` (three powers per element instead of four). A unit whose `v` is
//! all zero gets `w = 0`, as in the tensor-op form. Unit norms are `m·(Σ|x/m|^r)^{1/r}` (`m` the
//! unit's largest `|x|`). Five passes: the momentum (and the largest `|d|`), the sum for
//! `‖d_j‖_q`, the dual step into `d` (and the largest `|v|`), the primal power with the sums
//! `S_j`, and the scale. Every pass runs on pieces of whole unit runs in parallel
//! ([`Units::piece_len`], [`Units::par_fold`]) at the CPU's full vector width, the powers taken
//! inside the passes by [`Power`] (f32, within `⌈|e|⌉ + 1` ulp) and the sums added piece by piece
//! in an order fixed by the shape. So the two forms agree to float rounding, not bit for bit
//! (tested: within 1e-5 of each array's largest magnitude after three steps), and a run gives
//! the same bits with any number of threads and at any vector width.

use burn::tensor::Tensor;
use rayon::prelude::*;
use sparselab_core::fused::update_in_place;
use sparselab_core::powf::Power;
use sparselab_core::units::{Largest, Sum};
use sparselab_core::{Lane, Units, Weight};
use std::cell::RefCell;

/// The floor under a norm before it divides (the tensor-op form's `clamp_min`).
pub(super) const TINY: f64 = f32::MIN_POSITIVE as f64;

/// The scalars of one sphere step.
pub(super) struct SphereStep {
    /// The sphere's exponent p.
    pub p: f64,
    /// Nesterov momentum μ (0: none).
    pub momentum: f64,
    /// The learning rate η.
    pub lr: f64,
    /// Whether this is the parameter's first step (project onto the sphere, start the buffer).
    pub first: bool,
}

thread_local! {
    /// The step's direction `d`, kept between steps: a fresh megabyte-sized allocation costs a
    /// page fault per page on every step.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `‖x_j‖_r = m·(Σ|x/m|^r)^{1/r}` for every unit (the tensor-op `unit_norm`), given
/// `max = max|x_j|`.
fn unit_norms(units: &Units, x: &[f32], max: &[f32], r: f64) -> Vec<f32> {
    let floor: Vec<f32> = max.iter().map(|m| m.clamp_min(TINY)).collect();
    let power = Power::new(r);
    let sums = units.par_fold::<Sum>(x, &floor, move |x, m| power.of(x.abs() / m));
    max.iter()
        .zip(sums)
        .map(|(m, s)| *m * Lane::powf(s, 1.0 / r))
        .collect()
}

/// The largest `|x|` of each unit in one piece that starts at element `start`.
fn piece_max(units: &Units, start: usize, x: &[f32]) -> Vec<f32> {
    let ones = vec![1.0f32; units.count()];
    let mut max = vec![0.0f32; units.count()];
    sparselab_core::widest!(
        units.fold_piece::<Largest>(start, x, &ones, &mut max, |x, _| { x.abs() })
    );
    max
}

/// `x ← f(x, y, its unit's norm)` piece by piece at full vector width, `y` the same element of
/// another array; with `max`, also the largest `|x|` of each unit after the update (taken while
/// each piece is in cache).
fn update(
    units: &Units,
    (x, y): (&mut [f32], &mut [f32]),
    norms: &[f32],
    max: bool,
    f: impl Fn(f32, f32, f32) -> f32 + Copy + Sync,
) -> Option<Vec<f32>> {
    let maxima = pieces(units, x, y)
        .map(|(start, x, y)| {
            // A `move` closure: its own copy of `f` (and of the scalars it holds) in registers.
            sparselab_core::widest!(
                units.with_units(start, x, y, norms, move |x, y, n| { *x = f(*x, y, n) })
            );
            max.then(|| piece_max(units, start, x))
        })
        // Collected as a `Vec` of options: collecting into an `Option` would stop at the first
        // `None` and leave later pieces un-updated.
        .collect::<Vec<Option<Vec<f32>>>>();
    max.then(|| units.merge::<Largest>(maxima.into_iter().flatten().collect()))
}

/// The same pieces ([`Units::piece_len`]) of two arrays side by side, in parallel, each with the
/// index of its first element.
fn pieces<'a>(
    units: &Units,
    x: &'a mut [f32],
    y: &'a mut [f32],
) -> impl IndexedParallelIterator<Item = (usize, &'a mut [f32], &'a mut [f32])> {
    let piece = units.piece_len();
    x.par_chunks_mut(piece)
        .zip(y.par_chunks_mut(piece))
        .enumerate()
        .map(move |(i, (x, y))| (i * piece, x, y))
}

/// `d = g + μ·buf` after `buf ← μ·buf + g` (the first step: `d = g + μ·g`, `buf` already `g`;
/// without momentum `d = g`), for one piece. Its scalars arrive by value, so they live in
/// registers inside [`sparselab_core::widest!`].
#[inline(always)]
fn momentum(d: &mut [f32], buf: &mut [f32], g: &[f32], mu: f64, first: bool) {
    for ((d, b), g) in d.iter_mut().zip(buf.iter_mut()).zip(g) {
        *d = if mu <= 0.0 {
            *g
        } else if first {
            *g + g.mul_scalar(mu)
        } else {
            *b = b.mul_scalar(mu) + *g;
            *g + b.mul_scalar(mu)
        };
    }
}

/// One step in place: `w` (the weight, becomes the new weight) and `buf` (the momentum buffer;
/// on the first step a copy of `g`) on the units of `units`.
pub(super) fn sphere_step(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
) {
    SCRATCH.with_borrow_mut(|d| {
        d.resize(g.len(), 0.0);
        in_place(step, units, w, buf, g, d);
    });
}

fn in_place(
    step: &SphereStep,
    units: &Units,
    w: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
    d: &mut [f32],
) {
    let (p, mu, lr, first) = (step.p, step.momentum, step.lr, step.first);
    let [q, dual, primal] = super::step_powers(p);
    let piece = units.piece_len();
    let d_max = d
        .par_chunks_mut(piece)
        .zip(buf.par_chunks_mut(piece))
        .zip(g.par_chunks(piece))
        .enumerate()
        .map(|(i, ((d, buf), g))| {
            sparselab_core::widest!(momentum(d, buf, g, mu, first));
            piece_max(units, i * piece, d)
        })
        .collect();
    let d_max = units.merge::<Largest>(d_max);
    if first {
        let ones = vec![1.0f32; units.count()];
        let max = units.par_fold::<Largest>(w, &ones, |x, _| x.abs());
        let norms = unit_norms(units, w, &max, p);
        update(units, (w, d), &norms, false, |w, _, n| {
            w / n.clamp_min(TINY)
        });
    }
    let d_norms = unit_norms(units, d, &d_max, q);
    // v = (1 − η)·dual(w) − η·ĝ, dual(w) = sign(w)·|w|^{p−1}, into d (not needed after).
    let dual = Power::new(dual);
    let v_max = update(units, (d, w), &d_norms, true, move |d, w, n| {
        let dual = w.sign() * dual.of(w.abs());
        dual.mul_scalar(1.0 - lr) - (d / n.add_scalar(1e-6)).mul_scalar(lr)
    })
    .expect("asked for the maxima");
    // w = sign(v)·|v/m|^{1/(p−1)}·S^{−1/p}, S = Σ|v/m|·|v/m|^{1/(p−1)} = Σ|v/m|^q.
    let sums = primal_parts(units, w, d, &v_max, primal);
    let scales: Vec<f32> = sums
        .iter()
        .map(|s| {
            if *s > 0.0 {
                Lane::powf(*s, -1.0 / p)
            } else {
                0.0
            }
        })
        .collect();
    update(units, (w, d), &scales, false, |w, _, c| w * c);
}

/// The primal map's two parts, piece by piece: `w ← sign(v)·u` with `u = |v/m|^{1/(p−1)}`
/// (`exponent` = `1/(p−1)`; `m` the unit's largest `|v|`, floored), and each unit's sum
/// `S = Σ|v/m|·u`, which is `Σ|v/m|^q` since `q = 1 + 1/(p−1)`: one power per element serves both
/// the q-norm and the map (`d` is overwritten with the terms of the sum).
fn primal_parts(
    units: &Units,
    w: &mut [f32],
    v: &mut [f32],
    v_max: &[f32],
    exponent: f64,
) -> Vec<f32> {
    let floor: Vec<f32> = v_max.iter().map(|m| m.clamp_min(TINY)).collect();
    let ones = vec![1.0f32; units.count()];
    let primal = Power::new(exponent);
    let sums = pieces(units, w, v)
        .map(|(start, w, v)| {
            let (floor, ones) = (&floor, &ones);
            let mut acc = vec![0.0f32; units.count()];
            sparselab_core::widest!({
                units.with_units(start, w, v, floor, move |w, v, m| {
                    *w = v.sign() * primal.of(v.abs() / m);
                });
                units.with_units(start, v, w, floor, move |v, u, m| {
                    *v = (v.abs() / m) * u.abs();
                });
                units.fold_piece::<Sum>(start, v, ones, &mut acc, |x, _| x);
            });
            acc
        })
        .collect();
    units.merge::<Sum>(sums)
}

/// The operands of one step, handed back when the in-place form does not apply.
pub(super) struct Operands<const D: usize> {
    pub(super) tensor: Tensor<D>,
    pub(super) grad: Tensor<D>,
    pub(super) velocity: Option<Tensor<D>>,
}

/// The sphere step in place on the CPU backend, or its operands back on another backend.
pub(super) fn step_in_place<const D: usize>(
    step: &SphereStep,
    operands: Operands<D>,
) -> Result<(Tensor<D>, Option<Tensor<D>>), Box<Operands<D>>> {
    let units = {
        let w = Weight::from_tensor(operands.tensor.clone());
        Units::new(w.value.dims(), w.layout.output_axis())
    };
    let Operands {
        tensor,
        grad,
        velocity,
    } = operands;
    // The buffer is updated in place; on the first step (and without momentum) it starts as
    // a copy of the gradient.
    let fresh = velocity.is_none() || step.momentum <= 0.0;
    let (buf, kept) = match velocity {
        Some(v) if !fresh => (v, None),
        other => (grad.clone(), other),
    };
    match update_in_place([tensor, buf], [&grad], |[w, buf], [g]| {
        sphere_step(step, &units, w, buf, g);
    }) {
        Ok([next, buf]) => Ok((next, (step.momentum > 0.0).then_some(buf))),
        Err([tensor, buf]) => Err(Box::new(Operands {
            tensor,
            grad,
            velocity: if fresh { kept } else { Some(buf) },
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, linear};
    use super::super::{LpSgd, LpSgdConfig};
    use crate::sgd::SgdState;
    use burn::optim::Optimizer;
    use burn::tensor::{Device, Tensor, TensorData};
    use proptest::prelude::*;

    /// `steps` of `opt` from a weight of shape `dims`, in order: (weights, velocity) bits.
    fn trajectory<const D: usize>(
        opt: &LpSgd,
        w: Tensor<D>,
        grads: &[Tensor<D>],
        lr: f64,
    ) -> Vec<(Vec<u32>, Option<Vec<u32>>)> {
        let bits = |t: &Tensor<D>| -> Vec<u32> {
            t.clone()
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        let (mut w, mut state) = (w, None);
        let mut out = Vec::new();
        for g in grads {
            let (next, s) = opt.step(lr, w, g.clone(), state);
            let s: Option<SgdState<D>> = s;
            out.push((
                bits(&next),
                s.as_ref().and_then(|s| s.velocity.as_ref()).map(bits),
            ));
            (w, state) = (next, s);
        }
        out
    }

    /// Two trajectories at sphere exponent `p` agree to float rounding: every step's dual entries
    /// `v = sign(w)·|w|^{p−1}` within `1e-5·s + f` of each other, with `s` the largest dual
    /// magnitude in the array (a unit's dual has q-norm 1); the velocities the same way, with
    /// their own `s` and `f = 0`.
    ///
    /// Compared in the dual, not in `w`: a small entry is the difference of `(1 − η)·v` and
    /// `η·ĝ`, which cancel, so either form's rounding (a few ulp of the larger terms) is large
    /// relative to the entry. The primal map `w = |v|^{1/(p−1)}` then scales that error by
    /// `|v|^{(2−p)/(p−1)}/(p−1)`, unbounded near 0 for p > 2: at p = 3 one ulp of a row's
    /// largest dual entry becomes, in a small weight, an error far above any tolerance relative
    /// to the row's largest weight.
    ///
    /// `f` is where storing `w` rather than `v` loses entries (see the module doc): the dual of
    /// the smallest positive f32 is `v₀ = 2^{−149(p−1)}`, 1.4e-3 at p = 1.063, so a dual entry
    /// near `v₀` comes back as 0 in one form and `v₀` in the other (seed 493, p = 1.063). The
    /// difference then decays by `1 − η` a step, and each step can add another `v₀`: `f` is
    /// `v₀` times the number of steps. It is below 1e-22 for p ≥ 1.5.
    ///
    /// Not compared: which entries are exactly 0. `(1 − η)·v − η·ĝ` can cancel exactly in one form
    /// and leave a few ulp in the other (a dual of 0 against 1.6e-9, p = 2.5, seed 312). Zeros that
    /// must stay zero (an entry zero in the weight and in every gradient) are checked as such by
    /// [`structural_zeros_stay`].
    fn close(
        p: f64,
        a: &[(Vec<u32>, Option<Vec<u32>>)],
        b: &[(Vec<u32>, Option<Vec<u32>>)],
    ) -> bool {
        let near = |x: &[f64], y: &[f64], floor: f64| {
            let scale = y.iter().map(|y| y.abs()).fold(0.0, f64::max);
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(x, y)| (x - y).abs() <= 1e-5 * scale + floor)
        };
        let value = |b: &u32| f64::from(f32::from_bits(*b));
        let dual = |w: &[u32]| -> Vec<f64> {
            w.iter()
                .map(|b| value(b).signum() * value(b).abs().powf(p - 1.0))
                .collect()
        };
        let plain = |v: &[u32]| -> Vec<f64> { v.iter().map(value).collect() };
        let floor = a.len() as f64 * f64::from(f32::from_bits(1)).powf(p - 1.0);
        a.len() == b.len()
            && a.iter().zip(b).all(|((wa, va), (wb, vb))| {
                near(&dual(wa), &dual(wb), floor)
                    && match (va, vb) {
                        (Some(va), Some(vb)) => near(&plain(va), &plain(vb), 0.0),
                        (None, None) => true,
                        _ => false,
                    }
            })
    }

    /// Every weight and velocity entry whose index is `3 mod 11` (where the property test's
    /// weight and gradients are all zero) is exactly 0 after every step.
    fn structural_zeros_stay(t: &[(Vec<u32>, Option<Vec<u32>>)]) -> bool {
        let zero = |x: &[u32]| {
            x.iter()
                .enumerate()
                .all(|(i, b)| i % 11 != 3 || f32::from_bits(*b) == 0.0)
        };
        t.iter()
            .all(|(w, v)| zero(w) && v.as_deref().is_none_or(zero))
    }

    fn tensor<const D: usize>(values: &[f32], dims: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values.to_vec(), dims), &Device::flex())
    }

    /// A unit whose weights and gradients are all zero stays zero in both forms (its `v` is 0:
    /// the in-place form's scale `S^{−1/p}` would be infinite, the tensor-op form's norm is
    /// floored), while the other units take their normal step.
    #[test]
    fn an_all_zero_unit_stays_zero_in_both_forms() {
        let opt = LpSgd::new(&config(1.3), Some(1.3));
        // Units are columns: column 1 is zero in the weight and in every gradient.
        let w = linear(&[0.5, 0.0, -0.2, 0.0, 0.7, 0.0], 2);
        let gs: Vec<Tensor<2>> = (0..3)
            .map(|k| linear(&[0.1 * k as f32 - 0.1, 0.0, 0.3, 0.0, -0.2, 0.0], 2))
            .collect();
        let fused = trajectory(&opt, w.clone(), &gs, 0.1);
        let ops = sparselab_core::fused::with_tensor_ops(|| trajectory(&opt, w, &gs, 0.1));
        assert!(close(1.3, &fused, &ops), "{fused:?}\nvs\n{ops:?}");
        for (w, _) in &fused {
            let w: Vec<f32> = w.iter().map(|b| f32::from_bits(*b)).collect();
            assert!(w.iter().skip(1).step_by(2).all(|x| *x == 0.0), "{w:?}");
            assert!(
                w.iter().step_by(2).all(|x| x.is_finite() && *x != 0.0),
                "{w:?}"
            );
        }
    }

    /// The in-place step cuts its work into pieces that do not depend on the thread count, so
    /// one thread and three give the same bits (what `--jobs` needs), on a layer large enough to
    /// be cut (784×300, LeNet-300-100's first layer); and so does the baseline vector width.
    #[test]
    fn the_in_place_step_gives_the_same_bits_on_any_number_of_threads() {
        let opt = LpSgd::new(&config(1.2), Some(1.2));
        let n = 784 * 300;
        let values = |k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 7919 + k * 104_729) % 2003) as f32 / 1001.0 - 1.0) * 0.05)
                .collect()
        };
        let w = tensor(&values(0), [784, 300]);
        let gs: Vec<Tensor<2>> = (1..4).map(|k| tensor(&values(k), [784, 300])).collect();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool")
                .install(|| trajectory(&opt, w.clone(), &gs, 0.1))
        };
        let one = on(1);
        assert_eq!(one, on(3));
        let baseline = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a pool")
            .install(|| {
                sparselab_core::wide::with_baseline(|| trajectory(&opt, w.clone(), &gs, 0.1))
            });
        assert_eq!(one, baseline, "the same bits at the baseline vector width");
        let ops = sparselab_core::fused::with_tensor_ops(|| trajectory(&opt, w.clone(), &gs, 0.1));
        assert!(close(1.2, &one, &ops));
        assert_ne!(
            one, ops,
            "the in-place form ran (its powers round differently)"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The in-place form (`fused`) computes what the tensor-op form computes, to float
        /// rounding (its powers are vectorised, not libm's), after every step: for linear weights
        /// and conv filters (3×3 and 5×5, whose runs are folded in sixteen lanes), p with
        /// integral exponents (2, 3, 1.5) and without momentum.
        #[test]
        fn the_in_place_step_equals_the_tensor_op_step(
            p in prop_oneof![prop::sample::select(vec![2.0, 3.0, 1.5]), 1.05f64..3.0],
            momentum in prop::sample::select(vec![0.0, 0.9]),
            conv in prop::sample::select(vec![None, Some(3usize), Some(5)]),
            seed in 0u64..1000,
            lr in 0.01f64..0.5,
        ) {
            let opt = LpSgd::new(&LpSgdConfig { momentum, ..config(p) }, Some(p));
            let values = |n: usize, k: u64| -> Vec<f32> {
                (0..n)
                    .map(|i| {
                        let x = ((i as u64 * 2654435761 + seed * 97 + k * 7919) % 2001) as f32;
                        if i % 11 == 3 { 0.0 } else { x / 1000.0 - 1.0 }
                    })
                    .collect()
            };
            match conv {
                None => {
                    let dims = [13, 7];
                    let gs: Vec<Tensor<2>> = (1..4).map(|k| tensor(&values(91, k), dims)).collect();
                    let w = tensor(&values(91, 0), dims);
                    let fused = trajectory(&opt, w.clone(), &gs, lr);
                    let ops = sparselab_core::fused::with_tensor_ops(|| trajectory(&opt, w, &gs, lr));
                    prop_assert!(close(p, &fused, &ops), "{:?}\nvs\n{:?}", fused, ops);
                    prop_assert!(structural_zeros_stay(&fused) && structural_zeros_stay(&ops));
                }
                Some(k) => {
                    let dims = [4, 3, k, k];
                    let n = 12 * k * k;
                    let gs: Vec<Tensor<4>> = (1..4).map(|s| tensor(&values(n, s), dims)).collect();
                    let w = tensor(&values(n, 0), dims);
                    let fused = trajectory(&opt, w.clone(), &gs, lr);
                    let ops = sparselab_core::fused::with_tensor_ops(|| trajectory(&opt, w, &gs, lr));
                    prop_assert!(close(p, &fused, &ops), "{:?}\nvs\n{:?}", fused, ops);
                    prop_assert!(structural_zeros_stay(&fused) && structural_zeros_stay(&ops));
                }
            }
        }
    }
}
