//! Proximal operators shared by every regularizer and optimiser.
//!
//! `prox_{θψ}(z) = argmin_x ½‖x − z‖² + θ·ψ(x)`. For `ψ = ‖·‖₁` this is elementwise
//! soft-thresholding `S_θ(z) = sign(z)·max(|z| − θ, 0)` (SPEC.md, notation). Thresholds may be
//! a scalar or a per-element tensor ([`Threshold`]), which is how reweighted and accumulated
//! (dual-averaging) thresholds are expressed.

use burn::tensor::Tensor;

/// A prox threshold θ: one scalar for the whole tensor, or one value per element (a tensor that
/// broadcasts against the canonical rank-4 weight).
// A threshold lives for one optimiser step; boxing the tensor would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Threshold {
    /// The same θ for every element.
    Scalar(f64),
    /// θ per element.
    Tensor(Tensor<4>),
}

impl Threshold {
    /// θ = 1 (the weights `r ≡ 1` of an unweighted penalty).
    pub const ONE: Threshold = Threshold::Scalar(1.0);
    /// θ = 0 (no thresholding).
    pub const ZERO: Threshold = Threshold::Scalar(0.0);

    /// `a·θ`.
    #[must_use]
    pub fn scale(self, a: f64) -> Self {
        match self {
            Threshold::Scalar(t) => Threshold::Scalar(a * t),
            Threshold::Tensor(t) => Threshold::Tensor(t.mul_scalar(a)),
        }
    }

    /// Whether θ is the scalar 0 (the prox is the identity).
    pub fn is_zero(&self) -> bool {
        matches!(self, Threshold::Scalar(t) if *t == 0.0)
    }
}

impl std::ops::Add for Threshold {
    type Output = Threshold;

    /// `θ + other`.
    fn add(self, other: Threshold) -> Threshold {
        match (self, other) {
            (Threshold::Scalar(a), Threshold::Scalar(b)) => Threshold::Scalar(a + b),
            (Threshold::Tensor(a), Threshold::Scalar(b))
            | (Threshold::Scalar(b), Threshold::Tensor(a)) => Threshold::Tensor(a.add_scalar(b)),
            (Threshold::Tensor(a), Threshold::Tensor(b)) => Threshold::Tensor(a + b),
        }
    }
}

/// Elementwise soft-thresholding `S_θ(z) = sign(z)·max(|z| − θ, 0)`, computed as
/// `z − clamp(z, −θ, θ)`, which returns an exact `0.0` wherever `|z| ≤ θ`.
pub fn soft_threshold(z: Tensor<4>, theta: &Threshold) -> Tensor<4> {
    match theta {
        Threshold::Scalar(t) if *t <= 0.0 => z,
        Threshold::Scalar(t) => z.clone() - z.clamp(-*t, *t),
        Threshold::Tensor(t) => {
            let t = t.clone().expand(z.shape());
            z.clone() - z.max_pair(t.clone().neg()).min_pair(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use proptest::prelude::*;

    fn t4(values: &[f32]) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len(), 1, 1, 1]),
            &Device::flex(),
        )
    }

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn soft_threshold_hand_computed() {
        let z = t4(&[-3.0, -0.5, 0.0, 0.25, 1.0, 2.5]);
        assert_eq!(
            host(soft_threshold(z, &Threshold::Scalar(1.0))),
            vec![-2.0, 0.0, 0.0, 0.0, 0.0, 1.5]
        );
    }

    #[test]
    fn soft_threshold_per_element() {
        let z = t4(&[-3.0, -0.5, 2.0, 2.0]);
        let theta = Threshold::Tensor(t4(&[1.0, 0.1, 2.0, 0.5]));
        assert_eq!(host(soft_threshold(z, &theta)), vec![-2.0, -0.4, 0.0, 1.5]);
    }

    #[test]
    fn zero_threshold_is_identity() {
        let z = t4(&[-1.0, 0.5]);
        assert_eq!(host(soft_threshold(z, &Threshold::ZERO)), vec![-1.0, 0.5]);
    }

    #[test]
    fn threshold_algebra() {
        let t = Threshold::Scalar(2.0).scale(0.5) + Threshold::ONE;
        assert!(matches!(t, Threshold::Scalar(v) if v == 2.0));
        let t = Threshold::Tensor(t4(&[1.0, 2.0])).scale(2.0) + Threshold::Scalar(1.0);
        let Threshold::Tensor(t) = t else { panic!() };
        assert_eq!(host(t), vec![3.0, 5.0]);
    }

    proptest! {
        /// The prox output minimises ½(x − z)² + θ|x| (the objective is separable, so it is checked
        /// per element against nearby and far perturbations).
        #[test]
        fn soft_threshold_is_the_prox_of_l1(
            zs in proptest::collection::vec(-10.0f32..10.0, 1..16),
            theta in 0.0f32..5.0,
            deltas in proptest::collection::vec(-3.0f32..3.0, 16),
        ) {
            let x = host(soft_threshold(t4(&zs), &Threshold::Scalar(f64::from(theta))));
            let objective = |x: f32, z: f32| 0.5 * (x - z).powi(2) + theta * x.abs();
            for (i, (&xi, &zi)) in x.iter().zip(&zs).enumerate() {
                let best = objective(xi, zi);
                for d in [deltas[i % deltas.len()], 1e-3, -1e-3] {
                    prop_assert!(best <= objective(xi + d, zi) + 1e-4,
                        "x={xi} z={zi} θ={theta} d={d}");
                }
            }
        }
    }
}
