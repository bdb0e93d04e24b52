//! Prox thresholds θ: a scalar, a tensor, or a per-element θ kept lazy until a prox consumes it.
//!
//! A per-element θ is often a cheap function of a tensor that already exists: reweighted ℓ1's
//! weights `r = c·M / (1 + (M − 1)·A / max A)` of its moving average A (SPEC §1.1), ℓ1's
//! diagonal-metric threshold `λθ/d` (ProxSSI, §1.4), both times the optimiser's step-size
//! factors. Materialised with tensor ops, each op is one more pass over memory and one more
//! allocation per step. [`Threshold::Lazy`] keeps the source tensor, an [`ElementMap`] and the
//! pending factors instead, and a fused prox evaluates θ chunk by chunk inside its own pass
//! ([`Lazy::for_chunks`]) with the same f32 operations in the same order as the tensor form
//! ([`Lazy::into_tensor`]), so both agree bit for bit.

use burn::tensor::Tensor;
use sparselab_core::widest;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// An elementwise map `θ = f(t)` in f32, in two forms that agree bit for bit: on host slices
/// (inside a fused pass) and as tensor ops (any backend).
pub trait ElementMap: fmt::Debug + Send + Sync {
    /// `out[i] = factors.apply(f(t[i]))`, with the f32 operations of [`ElementMap::tensor`] in
    /// its order, then the factors: call [`fill_each`] with `f` (it runs the loop at the CPU's
    /// widest vector unit).
    fn fill(&self, t: &[f32], factors: Factors, out: &mut [f32]);

    /// `f(t)` as tensor ops.
    fn tensor(&self, t: Tensor<4>) -> Tensor<4>;
}

/// `out[i] = factors.apply(f(t[i]))` for every element, at the CPU's widest vector unit: the
/// loop every [`ElementMap::fill`] runs, with its map `f` moved in.
#[inline(always)]
pub fn fill_each(out: &mut [f32], t: &[f32], factors: Factors, f: impl Fn(f32) -> f32 + Copy) {
    widest!(
        out.iter_mut()
            .zip(t)
            .for_each(|(o, t)| *o = factors.apply(f(*t)))
    );
}

/// `1/t`, the map of a threshold that is inversely proportional to a metric (`λθ/d`).
#[derive(Clone, Copy, Debug)]
pub struct Reciprocal;

impl ElementMap for Reciprocal {
    fn fill(&self, t: &[f32], factors: Factors, out: &mut [f32]) {
        fill_each(out, t, factors, |t| 1.0 / t);
    }

    fn tensor(&self, t: Tensor<4>) -> Tensor<4> {
        t.recip()
    }
}

/// A per-element θ as `f(t)·a₁·a₂⋯`: a map `f` (none: the identity) of a tensor `t` that
/// broadcasts against the canonical rank-4 weight, then the factors applied in order, each an
/// f32 `mul_scalar`.
#[derive(Clone, Debug)]
pub struct Lazy {
    /// The source tensor `t`.
    pub source: Tensor<4>,
    /// The map `f` (`None`: θ is `t` itself times the factors).
    pub map: Option<Arc<dyn ElementMap>>,
    /// The pending factors, in the order they were applied.
    pub factors: Vec<f64>,
}

/// Elements evaluated per chunk of [`Lazy::for_chunks`]: small enough to stay in L1 next to the
/// prox's own operands.
const CHUNK: usize = 1024;

impl Lazy {
    /// θ = `map(source)`, no factors yet.
    pub fn mapped(source: Tensor<4>, map: Arc<dyn ElementMap>) -> Self {
        Self {
            source,
            map: Some(map),
            factors: Vec::new(),
        }
    }

    /// θ as a tensor: the map, then one `mul_scalar` per factor, as tensor ops.
    pub fn into_tensor(self) -> Tensor<4> {
        let t = match &self.map {
            Some(map) => map.tensor(self.source),
            None => self.source,
        };
        self.factors.iter().fold(t, |t, a| t.mul_scalar(*a))
    }

    /// Calls `body(range, θ[range])` for consecutive chunks of θ, where `source` holds the
    /// source tensor's elements (broadcast to the weight's shape) in memory order. θ is formed
    /// with [`Lazy::into_tensor`]'s f32 operations: the map, then each factor rounded to f32 as
    /// burn rounds a scalar. Runs compiled for the CPU's widest vector unit
    /// ([`sparselab_core::wide`]); mark `body` `#[inline(always)]` so its loop is compiled so too.
    pub fn for_chunks(&self, source: &[f32], body: impl FnMut(Range<usize>, &[f32])) {
        let factors: Vec<f32> = self.factors.iter().map(|a| *a as f32).collect();
        let map = self.map.as_deref();
        widest!(each_chunk(source, map, &factors, body))
    }
}

/// Up to [`Factors::FUSED`] pending factors of a [`Lazy`] θ as one product chain
/// `((x·a₁)·a₂)·a₃`, the missing ones 1: `x·1 = x` exactly, so the chain rounds as the factors'
/// separate `mul_scalar`s do, in one pass over a chunk instead of one pass per factor
/// (docs/performance.md has what that saves).
#[derive(Clone, Copy, Debug)]
pub struct Factors([f32; Factors::FUSED]);

impl Factors {
    /// How many factors one chain holds (the optimisers pend at most two: their step's and λ).
    pub const FUSED: usize = 3;

    /// The first [`Factors::FUSED`] of `factors`, and the rest.
    fn split(factors: &[f32]) -> (Self, &[f32]) {
        let (fused, rest) = factors.split_at(factors.len().min(Self::FUSED));
        let mut chain = [1.0; Self::FUSED];
        chain[..fused.len()].copy_from_slice(fused);
        (Self(chain), rest)
    }

    /// `x·a₁·a₂·a₃`, left to right.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        self.0.iter().fold(x, |x, a| x * a)
    }
}

/// The loop of [`Lazy::for_chunks`], inlined into each vector width's variant, with `body` moved
/// in by value (the form [`sparselab_core::wide`] asks for).
#[inline(always)]
fn each_chunk(
    source: &[f32],
    map: Option<&dyn ElementMap>,
    factors: &[f32],
    mut body: impl FnMut(Range<usize>, &[f32]),
) {
    let (chain, rest) = Factors::split(factors);
    let mut buffer = [0.0f32; CHUNK];
    for (k, t) in source.chunks(CHUNK).enumerate() {
        let theta = &mut buffer[..t.len()];
        match map {
            Some(map) => map.fill(t, chain, theta),
            None => {
                for (x, t) in theta.iter_mut().zip(t) {
                    *x = chain.apply(*t);
                }
            }
        }
        for &a in rest {
            for x in theta.iter_mut() {
                *x *= a;
            }
        }
        let start = k * CHUNK;
        body(start..start + t.len(), theta);
    }
}

/// A prox threshold θ: one scalar for the whole tensor, or one value per element.
// A threshold lives for one optimiser step; boxing the tensor would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Threshold {
    /// The same θ for every element.
    Scalar(f64),
    /// θ per element (a tensor that broadcasts against the canonical rank-4 weight).
    Tensor(Tensor<4>),
    /// θ per element, lazy: see [`Lazy`]. What [`Threshold::scale`] makes of a per-element θ
    /// and what a regularizer returns when its θ is a map of its state.
    Lazy(Lazy),
}

impl Threshold {
    /// θ = 1 (the weights `r ≡ 1` of an unweighted penalty).
    pub const ONE: Threshold = Threshold::Scalar(1.0);
    /// θ = 0 (no thresholding).
    pub const ZERO: Threshold = Threshold::Scalar(0.0);

    /// `a·θ` (lazy for a per-element θ: one more factor).
    #[must_use]
    pub fn scale(self, a: f64) -> Self {
        match self {
            Threshold::Scalar(t) => Threshold::Scalar(a * t),
            Threshold::Tensor(source) => Threshold::Lazy(Lazy {
                source,
                map: None,
                factors: vec![a],
            }),
            Threshold::Lazy(mut lazy) => {
                lazy.factors.push(a);
                Threshold::Lazy(lazy)
            }
        }
    }

    /// θ as a scalar part and a per-element part (`(0, Some(t))` or `(s, None)`), a lazy θ
    /// materialised as tensor ops.
    pub fn into_parts(self) -> (f64, Option<Tensor<4>>) {
        match self {
            Threshold::Scalar(s) => (s, None),
            Threshold::Tensor(t) => (0.0, Some(t)),
            Threshold::Lazy(lazy) => (0.0, Some(lazy.into_tensor())),
        }
    }

    /// Whether θ is the scalar 0 (the prox is the identity).
    pub fn is_zero(&self) -> bool {
        matches!(self, Threshold::Scalar(t) if *t == 0.0)
    }

    /// A per-element θ in its lazy form (a plain tensor is the identity map without factors),
    /// or `None` for a scalar.
    pub fn per_element(&self) -> Option<Lazy> {
        match self {
            Threshold::Scalar(_) => None,
            Threshold::Tensor(t) => Some(Lazy {
                source: t.clone(),
                map: None,
                factors: Vec::new(),
            }),
            Threshold::Lazy(lazy) => Some(lazy.clone()),
        }
    }
}

impl std::ops::Add for Threshold {
    type Output = Threshold;

    /// `θ + other`.
    fn add(self, other: Threshold) -> Threshold {
        match (self.into_parts(), other.into_parts()) {
            ((a, None), (b, None)) => Threshold::Scalar(a + b),
            ((_, Some(t)), (b, None)) | ((b, None), (_, Some(t))) => {
                Threshold::Tensor(t.add_scalar(b))
            }
            ((_, Some(a)), (_, Some(b))) => Threshold::Tensor(a + b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{host, t4};
    use proptest::prelude::*;

    #[test]
    fn threshold_algebra() {
        let t = Threshold::Scalar(2.0).scale(0.5) + Threshold::ONE;
        assert!(matches!(t, Threshold::Scalar(v) if v == 2.0));
        let t = Threshold::Tensor(t4(&[1.0, 2.0])).scale(2.0) + Threshold::Scalar(1.0);
        let Threshold::Tensor(t) = t else { panic!() };
        assert_eq!(host(t), vec![3.0, 5.0]);
        let lazy = Threshold::Tensor(t4(&[1.0, 2.0])).scale(2.0).scale(0.5);
        assert!(matches!(&lazy, Threshold::Lazy(l) if l.factors == [2.0, 0.5] && l.map.is_none()));
        assert_eq!(host(lazy.into_parts().1.unwrap()), vec![1.0, 2.0]);
        let recip = Threshold::Lazy(Lazy::mapped(t4(&[4.0, 0.5]), Arc::new(Reciprocal))).scale(3.0);
        assert_eq!(host(recip.into_parts().1.unwrap()), vec![0.75, 6.0]);
    }

    proptest! {
        /// Padding the chain with 1 changes no bit: `x·1 = x` for every f32, subnormals,
        /// zeros and infinities included (NaN stays NaN).
        #[test]
        fn an_empty_chain_is_the_identity(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            let y = Factors::split(&[]).0.apply(x);
            prop_assert!(y.to_bits() == bits || (x.is_nan() && y.is_nan()));
        }

        /// The chunks cover every element once, in order, and hold the tensor form's bits, for
        /// lengths around the chunk size, with and without a map.
        #[test]
        fn chunks_are_the_tensor_form_bit_for_bit(
            values in proptest::collection::vec(0.01f32..100.0, 1..3 * CHUNK + 7),
            factors in proptest::collection::vec(0.0f64..3.0, 0..2 * Factors::FUSED),
            mapped in any::<bool>(),
        ) {
            let lazy = Lazy {
                source: t4(&values),
                map: mapped.then(|| Arc::new(Reciprocal) as Arc<dyn ElementMap>),
                factors,
            };
            let mut chunked = Vec::new();
            lazy.for_chunks(&values, |range, theta| {
                assert_eq!(range.start, chunked.len());
                assert_eq!(range.len(), theta.len());
                chunked.extend_from_slice(theta);
            });
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&chunked), bits(&host(lazy.into_tensor())));
        }
    }
}
