//! The canonical rank-4 view of a weight tensor.
//!
//! burn's optimiser API is generic over the tensor rank, but prox operators, masks and norm
//! constraints are easier to write once. A [`Weight`] is the weight reshaped (never copied or
//! transposed) to rank 4 together with its [`Layout`], which says which axis holds input units
//! and which holds output units:
//!
//! | layer  | burn shape              | canonical shape           | input axis | output axis |
//! |--------|-------------------------|---------------------------|------------|-------------|
//! | Linear | `[d_in, d_out]`         | `[d_in, d_out, 1, 1]`     | 0          | 1           |
//! | Conv2d | `[c_out, c_in, kh, kw]` | `[c_out, c_in, kh, kw]`   | 1          | 0           |
//!
//! Rank 1 (biases, norm parameters) maps to `[n, 1, 1, 1]` with [`Layout::Vector`]; methods
//! never regularise those, but optimisers still update them through the same code.

use burn::tensor::Tensor;

/// Which axes of a canonical rank-4 weight hold input and output units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A vector parameter (bias, norm scale): `[n, 1, 1, 1]`.
    Vector,
    /// A linear weight `[d_in, d_out, 1, 1]`.
    Linear,
    /// A conv weight `[c_out, c_in, kh, kw]`.
    Conv,
}

impl Layout {
    /// The layout burn uses for a parameter of rank `rank`, if it is a supported rank.
    pub fn of_rank(rank: usize) -> Option<Self> {
        match rank {
            1 => Some(Layout::Vector),
            2 => Some(Layout::Linear),
            4 => Some(Layout::Conv),
            _ => None,
        }
    }

    /// Axis holding input units (fan-in groups), if any.
    pub fn input_axis(self) -> Option<usize> {
        match self {
            Layout::Vector => None,
            Layout::Linear => Some(0),
            Layout::Conv => Some(1),
        }
    }

    /// Axis holding output units (neurons, filters).
    pub fn output_axis(self) -> usize {
        match self {
            Layout::Vector => 0,
            Layout::Linear => 1,
            Layout::Conv => 0,
        }
    }
}

/// A parameter reshaped to rank 4, with the shape to restore it to.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The values, `[a, b, c, d]` as in the module docs.
    pub value: Tensor<4>,
    /// Which axes are input and output units.
    pub layout: Layout,
    shape: Vec<usize>,
}

impl Weight {
    /// Views a rank-`D` parameter as rank 4 (a reshape: no data is moved).
    ///
    /// # Panics
    /// If `D` is not 1, 2 or 4 (burn's linear, conv and vector parameters).
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let layout = Layout::of_rank(D)
            .unwrap_or_else(|| panic!("rank-{D} parameters have no canonical weight view"));
        let shape = tensor.dims().to_vec();
        let dims = match layout {
            Layout::Vector => [shape[0], 1, 1, 1],
            Layout::Linear => [shape[0], shape[1], 1, 1],
            Layout::Conv => [shape[0], shape[1], shape[2], shape[3]],
        };
        Self {
            value: tensor.reshape(dims),
            layout,
            shape,
        }
    }

    /// The weight with its values replaced by `f(values)`. `f` receives the values by value, so
    /// when this weight held the only handle a fused update of them runs in place instead of
    /// copying them first (as `with_value(f(w.value.clone()))` would).
    #[must_use]
    pub fn map_value(self, f: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Self {
        let Self {
            value,
            layout,
            shape,
        } = self;
        let dims = value.dims();
        let value = f(value);
        debug_assert_eq!(value.dims(), dims);
        Self {
            value,
            layout,
            shape,
        }
    }

    /// A weight with new values of the same shape and layout.
    #[must_use]
    pub fn with_value(&self, value: Tensor<4>) -> Self {
        debug_assert_eq!(value.dims(), self.value.dims());
        Self {
            value,
            layout: self.layout,
            shape: self.shape.clone(),
        }
    }

    /// Back to burn's rank-`D` shape.
    pub fn into_tensor<const D: usize>(self) -> Tensor<D> {
        let dims: [usize; D] = self.shape.as_slice().try_into().unwrap_or_else(|_| {
            panic!("weight of rank {} read back as rank {D}", self.shape.len())
        });
        self.value.reshape(dims)
    }

    /// The original (burn) shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Sums `x` over every axis except `keep`, keeping dims (so the result broadcasts against
    /// the weight).
    pub fn sum_except(x: Tensor<4>, keep: usize) -> Tensor<4> {
        (0..4)
            .filter(|&axis| axis != keep)
            .fold(x, |acc, axis| acc.sum_dim(axis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn linear_round_trip_keeps_values_and_axes() {
        let device = Device::flex();
        let t = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]),
            &device,
        );
        let w = Weight::from_tensor(t.clone());
        assert_eq!(w.value.dims(), [3, 2, 1, 1]);
        assert_eq!(w.layout.input_axis(), Some(0));
        // Sum over everything but the input axis: one value per input unit (row of [d_in, d_out]).
        let per_input: Vec<f32> = Weight::sum_except(w.value.clone(), 0)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(per_input, vec![3.0, 7.0, 11.0]);
        let back: Tensor<2> = w.into_tensor();
        assert_eq!(back.into_data(), t.into_data());
    }

    #[test]
    fn conv_axes() {
        assert_eq!(Layout::Conv.input_axis(), Some(1));
        assert_eq!(Layout::Conv.output_axis(), 0);
        assert_eq!(Layout::of_rank(3), None);
    }
}
