//! burn operations that sparselab computes itself on flex, where burn-flex's general kernel is
//! slow for the models' cases: [`conv2d`] (stride-1 convolutions: LeNet-5's and ResNet's,
//! forward and every gradient) and [`max_pool`] (k×k windows with stride k). Each is a burn
//! backend extension with its own backward under autodiff, and each computes **exactly what
//! burn's op computes**, forward and backward, so no result depends on whether it ran.
//!
//! A model calls [`conv2d`] and [`max_pool`] instead of burn's ops; they run sparselab's kernel
//! for f32 tensors on flex and burn's op everywhere else. [`with_burn_ops`] is the one switch
//! that turns every kernel here off on a thread: the reference the kernels are tested against
//! (a whole model's forward and backward, both ways, below) and the baseline of their speed.
//! Nothing outside this folder needs to be read to add a model or a method.

pub mod conv;
pub mod max_pool;

pub use conv::conv2d;
pub use max_pool::max_pool;

use burn::tensor::{DType, Device, Tensor};
use std::cell::Cell;

thread_local! {
    /// Whether the kernels are switched off on this thread ([`with_burn_ops`]).
    static BURN_OPS_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every kernel of this module switched off on the calling thread: models then
/// run burn's own operations. The flag is read when an operation is called (a backward pass
/// differentiates whichever ran forward).
pub fn with_burn_ops<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BURN_OPS_ONLY.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(BURN_OPS_ONLY.with(|c| c.replace(true)));
    f()
}

/// Whether an operation on `x` runs sparselab's kernel (an f32 tensor on flex, with or without
/// autodiff, kernels not switched off) rather than burn's op.
fn runs_kernel(x: &Tensor<4>) -> bool {
    !BURN_OPS_ONLY.with(Cell::get)
        && x.device().without_autodiff() == Device::flex()
        && x.dtype() == DType::F32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Architecture, Model, registry};
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Distribution;
    use serde_json::json;

    /// Every parameter's gradient, in module order, as bits (empty for a buffer).
    struct GradBits<'a> {
        grads: &'a burn::optim::GradientsParams,
        out: Vec<Vec<u32>>,
    }

    impl ModuleVisitor for GradBits<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // Buffers (a norm layer's running statistics) have no gradient.
            let values = self.grads.get::<D>(param.id).map_or_else(Vec::new, |g| {
                g.into_data().try_into_vec::<f32>().expect("f32")
            });
            self.out.push(values.iter().map(|v| v.to_bits()).collect());
        }
    }

    /// Logits and every gradient of a cross-entropy-like loss, as bits.
    fn forward_backward(model: &Model, x: Tensor<4>) -> (Vec<u32>, Vec<Vec<u32>>) {
        let logits = model.forward(x, false).logits;
        let bits = logits
            .clone()
            .inner()
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let loss = (logits.clone() * logits).sum();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), model);
        let mut visitor = GradBits {
            grads: &grads,
            out: Vec::new(),
        };
        model.visit(&mut visitor);
        (bits.iter().map(|v| v.to_bits()).collect(), visitor.out)
    }

    /// A whole model gives the same logits and gradients, bit for bit, with the kernels and with
    /// burn's ops: LeNet-5 (both convolution paths, the pooling) and a small ResNet (3×3
    /// stride-1 convolutions without bias, a stride-2 one and 1×1 shortcuts that take burn's op).
    #[test]
    fn models_give_burns_bits_with_the_kernels_on_and_off() {
        let device = Device::flex().autodiff();
        for (table, shape) in [
            (json!({ "name": "lenet5" }), [8, 1, 28, 28]),
            (
                json!({ "name": "resnet-cifar", "depth": 8 }),
                [4, 3, 16, 16],
            ),
        ] {
            device.seed(5);
            let input = crate::InputShape {
                channels: shape[1],
                height: shape[2],
                width: shape[3],
                classes: 10,
            };
            let model = registry()
                .build(&table)
                .expect("a registered model")
                .value
                .build(input, &device)
                .expect("builds");
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let ours = forward_backward(&model, x.clone());
            let burns = with_burn_ops(|| forward_backward(&model, x));
            assert_eq!(ours, burns, "{table}");
        }
    }

    /// The switch is per thread and restored afterwards.
    #[test]
    fn the_switch_turns_the_kernels_off_and_back_on() {
        let x = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex());
        assert!(runs_kernel(&x));
        assert!(!with_burn_ops(|| runs_kernel(&x)));
        assert!(runs_kernel(&x));
    }
}
