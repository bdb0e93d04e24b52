//! One spelling of an elementwise update, two evaluations: on whole tensors (tensor ops, any
//! backend) and on single f32 elements (inside one fused pass over memory, [`crate::fused`]).
//!
//! An update written once against [`Lane`], say proximal SGD's
//!
//! ```text
//! m ← β·m + (1 − β)·d,   z = w − η·m
//! ```
//!
//! runs as tensor ops when called with tensors and per element when called with `f32`. burn's
//! CPU backend applies a scalar operand by rounding it to f32 and doing the f32 operation, and
//! the `f32` impl does exactly that (no fused multiply-add), so both evaluations give the same
//! bits: the invariant of [`crate::fused`] holds by construction. [`elementwise!`](crate::elementwise!)
//! is how an update written this way is run: the one place that picks the evaluation.

use burn::tensor::Tensor;
use std::ops::{Add, Div, Mul, Sub};

/// The arithmetic an elementwise update may use: the four operations between operands and with
/// scalars, and a few unary functions, each one rounding step in f32.
pub trait Lane:
    Clone + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// `self · s`.
    fn mul_scalar(self, s: f64) -> Self;
    /// `self / s`.
    fn div_scalar(self, s: f64) -> Self;
    /// `self + s`.
    fn add_scalar(self, s: f64) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
    /// `√self`.
    fn sqrt(self) -> Self;
    /// `self^e`, as burn's `powf_scalar` computes it on the CPU backend: an integral `e` of 0, 1
    /// or 2 by `1`, `self` and `self·self`, −1 and −2 by `1/self` and `1/(self·self)`, any other
    /// `e` by `powf(self, e as f32)`.
    fn powf(self, e: f64) -> Self;
    /// `sign(self)`: ±1, and 0 for ±0 and NaN.
    fn sign(self) -> Self;
    /// `max(self, s)`, with NaN kept (burn's `clamp_min`).
    fn clamp_min(self, s: f64) -> Self;
}

impl Lane for f32 {
    #[inline(always)]
    fn mul_scalar(self, s: f64) -> Self {
        self * s as f32
    }

    #[inline(always)]
    fn div_scalar(self, s: f64) -> Self {
        self / s as f32
    }

    #[inline(always)]
    fn add_scalar(self, s: f64) -> Self {
        self + s as f32
    }

    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }

    #[inline(always)]
    fn powf(self, e: f64) -> Self {
        // `e` is integral when it survives a round trip through i64 (a cast, not a `floor`
        // call: this runs once per element); exponents beyond i64 take `powf` either way.
        let whole = e as i64;
        if whole as f64 != e {
            return f32::powf(self, e as f32);
        }
        match whole {
            0 => 1.0,
            1 => self,
            2 => self * self,
            -1 => 1.0 / self,
            -2 => 1.0 / (self * self),
            _ => f32::powf(self, e as f32),
        }
    }

    #[inline(always)]
    fn sign(self) -> Self {
        if self.is_nan() || self == 0.0 {
            0.0
        } else {
            f32::copysign(1.0, self)
        }
    }

    #[inline(always)]
    fn clamp_min(self, s: f64) -> Self {
        let s = s as f32;
        if self.is_nan() || self > s { self } else { s }
    }
}

impl<const D: usize> Lane for Tensor<D> {
    fn mul_scalar(self, s: f64) -> Self {
        Tensor::mul_scalar(self, s)
    }

    fn div_scalar(self, s: f64) -> Self {
        Tensor::div_scalar(self, s)
    }

    fn add_scalar(self, s: f64) -> Self {
        Tensor::add_scalar(self, s)
    }

    fn abs(self) -> Self {
        Tensor::abs(self)
    }

    fn sqrt(self) -> Self {
        Tensor::sqrt(self)
    }

    fn powf(self, e: f64) -> Self {
        Tensor::powf_scalar(self, e)
    }

    fn sign(self) -> Self {
        Tensor::sign(self)
    }

    fn clamp_min(self, s: f64) -> Self {
        Tensor::clamp_min(self, s)
    }
}

/// `elementwise!([outputs], [inputs], |[o, …], [i, …]| update)`: an elementwise update stated
/// once, against [`crate::Lane`], evaluated the fastest way the backend allows. On flex it runs
/// per element as one pass over memory in place ([`crate::fused::map_in_place`]: the outputs'
/// storage is
/// written where a tensor is its only owner, at the CPU's widest vector unit); on any other
/// backend, or inside [`crate::fused::with_tensor_ops`], the same `update` runs once on the
/// whole tensors as
/// tensor ops. Both give the same bits ([`crate::fused`]'s invariant). Evaluates to the new
/// outputs.
///
/// `outputs` are tensors taken by value, `inputs` references to tensors of the same shape; the
/// patterns name them (one identifier or `_` each) for `update`, which returns the new outputs
/// as an array. This is the one place that chooses between the two forms: an optimiser writes
///
/// ```ignore
/// let [w, v] = elementwise!([tensor, velocity], [&grad], |[w, v], [g]| self.update(lr, w, v, g));
/// ```
#[macro_export]
macro_rules! elementwise {
    ([$($out:expr),* $(,)?], [$($inp:expr),* $(,)?], |[$($o:tt),*], [$($i:tt),*]| $update:expr) => {
        match $crate::fused::map_in_place([$($out),*], [$($inp),*], |[$($o),*], [$($i),*]| $update) {
            Ok(updated) => updated,
            Err([$($o),*]) => {
                $(let $i = ::std::clone::Clone::clone($inp);)*
                $update
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use proptest::prelude::*;

    /// A sample of every operation, written once; `e` is a power's exponent.
    fn mix<L: Lane>(a: L, b: L, s: f64, e: f64) -> L {
        let x = (a.clone() * b.clone()).mul_scalar(s) + a.clone().div_scalar(s + 1.0);
        let y = (b.clone() - a.clone()).abs().sqrt().add_scalar(-s);
        let z = a.clone().abs().powf(e) * b.clone().sign() + a.clone().powf(e).clamp_min(s);
        x / (y.abs().add_scalar(1.0)) - b + z
    }

    /// Exponents with a special case on the CPU backend (integral 0, ±1, ±2), other integers
    /// and fractions.
    fn exponent() -> impl Strategy<Value = f64> {
        prop_oneof![
            prop::sample::select(vec![0.0, 1.0, 2.0, -1.0, -2.0, 3.0, 0.5, 6.0]),
            0.05f64..16.0,
        ]
    }

    proptest! {
        /// Evaluated on tensors (flex) and per element, an update gives the same bits.
        #[test]
        fn tensor_and_element_evaluations_agree_bit_for_bit(
            ab in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 1..32),
            s in -10.0f64..10.0,
            e in exponent(),
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) = ab.into_iter().unzip();
            let t = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &Device::flex());
            let tensor: Vec<u32> = mix(t(&a), t(&b), s, e)
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
                .iter()
                .map(|x| x.to_bits())
                .collect();
            let element: Vec<u32> = a.iter().zip(&b).map(|(a, b)| mix(*a, *b, s, e).to_bits()).collect();
            prop_assert_eq!(tensor, element);
        }
    }
}
