//! 2-D convolution on flex with the time spent where the arithmetic is (LeNet-5, SPEC.md §4).
//!
//! ```text
//! y[b, o, i, j] = bias[o] + Σ_{c, p, q} x[b, c, i + p − pad_h, j + q − pad_w] · w[o, c, p, q]
//! ∂L/∂w = conv(xᵀ, gᵀ)ᵀ   (ᵀ swaps the first two dimensions; burn's definition)
//! ```
//!
//! [`conv2d`] runs a layer as a sparselab backend extension ([`Conv2dBackend`]) on flex, where
//! the forward pass, the weight gradient and the input gradient are sparselab kernels that compute
//! **burn-flex's result bit for bit** for stride-1 convolutions (dilation 1, one group, symmetric
//! padding, f32; LeNet-5's layers and ResNet's 3×3 stride-1 layers): [`direct`] for flex's
//! small-channel path (at most 4 input and 16 output channels: LeNet-5's first layer, a ResNet
//! stem), [`im2col`] for its general im2col + gemm path (the other layers, and the weight
//! gradients) and [`transpose`] for its transposed convolution (the input gradient). Which path
//! flex would take is decided by [`flex_path`], flex's own rule; every other case (stride 2, 1×1,
//! flex's tiled transposed path) runs flex's op. The bias gradient is flex's own sum over a
//! matrix sparselab lays out on both cores ([`bias_grad`]). flex spends most of these operations'
//! time in copies around the matrix products and on one thread (docs/performance.md). Other
//! backends (WGPU) and padding burn computes per input
//! (`Same`) use burn's `Conv2d::forward`. Property tests compare values and gradients with burn's
//! op bit for bit.

mod direct;
mod gemm_call;
mod im2col;
mod scratch;
mod transpose;

use super::runs_kernel;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor,
};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Tensor, TensorData};
use im2col::View;
use rayon::prelude::*;
use sparselab_core::fused::elements;

/// `layer` applied to `x` `[N, C, H, W]`: the same values and gradients as `layer.forward(x)`.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    match padding {
        Some([ph, pw]) if runs_kernel(&x) => {
            let options = ConvOptions::new(layer.stride, [ph, pw], layer.dilation, layer.groups);
            let (x, weight) = (x.into_dispatch(), layer.weight.val().into_dispatch());
            Tensor::from_dispatch(match &layer.bias {
                Some(b) => Dispatch::conv2d_fast(x, weight, b.val().into_dispatch(), options),
                None => Dispatch::conv2d_fast_unbiased(x, weight, options),
            })
        }
        _ => layer.forward(x),
    }
}

/// The convolution as a backend extension: flex runs it, autodiff differentiates it.
#[backend_extension(Flex, Autodiff)]
pub trait Conv2dBackend: Backend {
    /// `conv2d(x, weight) + bias`.
    fn conv2d_fast(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
    /// `conv2d(x, weight)`, for a layer without a bias.
    fn conv2d_fast_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
    /// The gradient with respect to `x` or `weight` ([`GradientOf`]), given the output's.
    fn conv2d_fast_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        of: GradientOf,
    ) -> FloatTensor<Self>;
}

/// Which gradient [`Conv2dBackend::conv2d_fast_backward`] computes, with the convolution's
/// options.
#[derive(Clone, Debug)]
pub struct GradientOf {
    /// The operand differentiated.
    pub wrt: Wrt,
    /// The options of the convolution being differentiated.
    pub options: ConvOptions<2>,
}

/// An operand of the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// The input `x`.
    Input,
    /// The weight.
    Weight,
    /// The bias: `∂L/∂bias[o] = Σ_{b, i, j} g[b, o, i, j]`.
    Bias,
}

/// The forward path burn-flex 0.22.1 takes for a convolution (`conv3d_typed!` in its
/// `ops/conv.rs`, on the 2-D shapes it expands to 3-D), as far as sparselab reproduces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlexPath {
    /// At most 4 input and 16 output channels: [`direct`].
    SmallChannel,
    /// im2col + gemm: [`im2col`].
    General,
    /// A path sparselab leaves to flex (1×1, depthwise, 1-D direct), or options it does not
    /// handle (stride, dilation, groups).
    Flex,
}

/// flex's choice for input `[N, C, H, W]` and weight `[O, C/groups, KH, KW]`, in flex's order
/// (1×1, depthwise, small-channel, direct, general), limited to stride 1, dilation 1, one group.
fn flex_path(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> FlexPath {
    let [_, c, h, _] = x;
    let [o, _, kh, kw] = w;
    let pad = options.padding_begin();
    if !handled(x, w, options) {
        return FlexPath::Flex;
    }
    let unpadded = pad == [0, 0];
    let one_by_one = kh == 1 && kw == 1 && unpadded;
    let depthwise = w[1] == 1 && c == 1 && o == 1;
    let direct = unpadded && kh == 1 && h == 1 && c >= 32 && kw <= 8;
    if one_by_one || depthwise {
        FlexPath::Flex
    } else if c <= 4 && o <= 16 {
        FlexPath::SmallChannel
    } else if direct {
        FlexPath::Flex
    } else {
        FlexPath::General
    }
}

/// Whether sparselab's kernels handle these options and shapes at all: stride 1, dilation 1, one
/// group, the same padding on both sides, channels, and a kernel that fits the padded input.
fn handled(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> bool {
    let pad = options.padding_begin();
    options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.groups == 1
        && !options.is_asymmetric()
        && x[1] > 0
        && w[0] > 0
        && x[1] == w[1]
        && w[2] <= x[2] + 2 * pad[0]
        && w[3] <= x[3] + 2 * pad[1]
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// flex's forward result for `x`, `weight`, `bias` (all contiguous) by a sparselab kernel, or `None`
/// where sparselab leaves the convolution to flex.
fn forward_kernel(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<(Vec<f32>, [usize; 4])> {
    if [Some(x), Some(weight), bias]
        .iter()
        .flatten()
        .any(|t| t.dtype() != DType::F32)
    {
        return None;
    }
    let (xd, wd) = (dims(x), dims(weight));
    let pad = options.padding_begin();
    let (w, b) = (elements(weight), bias.map(elements));
    // Both kernel paths imply `handled`, so the output shape is defined there.
    match flex_path(xd, wd, options) {
        FlexPath::SmallChannel if pad == [0, 0] || w.iter().all(|v| v.is_finite()) => {
            let y = direct::conv(elements(x), xd, w, wd, b, pad);
            Some((y, out_dims(xd, wd, pad)))
        }
        FlexPath::General => {
            let out = out_dims(xd, wd, pad);
            let mut y = im2col::conv(
                View::contiguous(elements(x), xd),
                View::contiguous(w, wd),
                pad,
            );
            // flex adds the bias after the product, as `y + bias`.
            if let Some(b) = b {
                for (i, plane) in y.chunks_exact_mut(out[2] * out[3]).enumerate() {
                    let bias = b[i % out[1]];
                    plane.iter_mut().for_each(|v| *v += bias);
                }
            }
            Some((y, out))
        }
        _ => None,
    }
}

/// `[N, O, OH, OW]`: the output shape of input `x` and weight `w` with padding `pad` (stride 1,
/// a kernel that fits: [`handled`]).
fn out_dims(x: [usize; 4], w: [usize; 4], pad: [usize; 2]) -> [usize; 4] {
    [
        x[0],
        w[0],
        x[2] + 2 * pad[0] + 1 - w[2],
        x[3] + 2 * pad[1] + 1 - w[3],
    ]
}

/// A convolution's backward pass where sparselab's gradient kernels may run: input and weight
/// dims, an f32 output gradient of the output shape, and options sparselab handles.
struct GradCase<'a> {
    x: [usize; 4],
    w: [usize; 4],
    grad: &'a FlexTensor,
    options: &'a ConvOptions<2>,
}

impl<'a> GradCase<'a> {
    fn new(
        x: [usize; 4],
        w: [usize; 4],
        grad: &'a FlexTensor,
        options: &'a ConvOptions<2>,
    ) -> Option<Self> {
        let fits = grad.dtype() == DType::F32
            && handled(x, w, options)
            && dims(grad) == out_dims(x, w, options.padding_begin());
        fits.then_some(Self {
            x,
            w,
            grad,
            options,
        })
    }

    /// flex's weight gradient (burn's `conv(xᵀ, gᵀ)ᵀ`; the inner convolution exchanges stride
    /// and dilation, both 1 here) by [`im2col`], reading the transposed `x` and gradient
    /// (contiguous) through strides instead of copying them; `None` where the inner convolution
    /// is not on flex's general path.
    fn weight_grad(&self, x: &FlexTensor) -> Option<Vec<f32>> {
        let (xd, gd, wd) = (self.x, dims(self.grad), self.w);
        let inner = ([xd[1], xd[0], xd[2], xd[3]], [gd[1], gd[0], gd[2], gd[3]]);
        if x.dtype() != DType::F32 || flex_path(inner.0, inner.1, self.options) != FlexPath::General
        {
            return None;
        }
        let xt = View::contiguous(elements(x), xd).swap_first_two();
        let gt = View::contiguous(elements(self.grad), gd).swap_first_two();
        // [C, O, KH, KW] → [O, C, KH, KW].
        let swapped = im2col::conv(xt, gt, self.options.padding_begin());
        let (c, o, k) = (wd[1], wd[0], wd[2] * wd[3]);
        let mut w_grad = vec![0.0f32; o * c * k];
        for (oc, out) in w_grad.chunks_exact_mut(c * k).enumerate() {
            for (ic, out) in out.chunks_exact_mut(k).enumerate() {
                out.copy_from_slice(&swapped[(ic * o + oc) * k..][..k]);
            }
        }
        Some(w_grad)
    }

    /// flex's input gradient (burn's transposed convolution of the output gradient with
    /// `weight`) by [`transpose`]; `None` where flex would tile its column buffer.
    fn input_grad(&self, weight: &FlexTensor) -> Option<Vec<f32>> {
        let (wd, gd) = (self.w, dims(self.grad));
        let columns_bytes = 4 * wd[1] * wd[2] * wd[3] * gd[2] * gd[3];
        if weight.dtype() != DType::F32 || columns_bytes > transpose::COLUMNS_BYTES {
            return None;
        }
        let (g, w) = (elements(self.grad), elements(weight));
        Some(transpose::x_grad(
            g,
            gd,
            w,
            wd,
            self.options.padding_begin(),
        ))
    }
}

/// flex's bias gradient of a convolution with output gradient `grad` `[N, O, OH, OW]`
/// (contiguous), bit for bit. burn computes it (`conv2d_bias_backward`) as
///
/// ```text
/// ∂L/∂bias = sum_dim(reshape(swap_dims(g, 0, 1), [O, N·OH·OW]), 1)
/// ```
///
/// where flex's reshape copies the swapped view into a contiguous matrix on one thread (a tiled
/// transpose, about 5 % of a LeNet-5 step). Here the same matrix is built by copying each
/// image's `OH·OW` plane of channel `o` into row `o`, the rows on both cores, and summed by flex's
/// own `sum_dim`: the same sum of the same contiguous values, so the same bits.
fn bias_grad(grad: FlexTensor) -> FlexTensor {
    let [n, o, oh, ow] = dims(&grad);
    let (plane, len) = (oh * ow, n * oh * ow);
    let rows = if grad.dtype() == DType::F32 {
        let g = elements(&grad);
        let mut rows = vec![0.0f32; o * len];
        rows.par_chunks_mut(len.max(1))
            .enumerate()
            .for_each(|(oc, row)| {
                for (b, out) in row.chunks_exact_mut(plane.max(1)).enumerate() {
                    out.copy_from_slice(&g[(b * o + oc) * plane..][..plane]);
                }
            });
        FlexTensor::from_data(TensorData::new(rows, [o, len]))
    } else {
        Flex::float_reshape(Flex::float_swap_dims(grad, 0, 1), Shape::new([o, len]))
    };
    Flex::float_reshape(Flex::float_sum_dim(rows, 1), Shape::new([o]))
}

/// The forward pass on flex: a sparselab kernel where [`forward_kernel`] has one, else flex's op.
fn flex_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let kernel = forward_kernel(&x, &weight, bias.as_ref(), &options);
    or_flex(kernel, || Flex::conv2d(x, weight, bias, options))
}

/// A kernel's result as a flex tensor of shape `dims`, or flex's op where the kernel declined.
fn or_flex(
    kernel: Option<(Vec<f32>, [usize; 4])>,
    flex: impl FnOnce() -> FlexTensor,
) -> FlexTensor {
    match kernel {
        Some((values, dims)) => FlexTensor::from_data(TensorData::new(values, dims)),
        None => flex(),
    }
}

impl Conv2dBackend for Flex {
    fn conv2d_fast(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_forward(x, weight, Some(bias), options)
    }

    fn conv2d_fast_unbiased(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_forward(x, weight, None, options)
    }

    fn conv2d_fast_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        GradientOf { wrt, options }: GradientOf,
    ) -> FlexTensor {
        let (x, weight, grad) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            grad.to_contiguous(),
        );
        let (xd, wd) = (dims(&x), dims(&weight));
        let case = GradCase::new(xd, wd, &grad, &options);
        match wrt {
            Wrt::Bias => bias_grad(grad),
            Wrt::Input => or_flex(
                case.and_then(|c| c.input_grad(&weight)).map(|v| (v, xd)),
                || Flex::conv2d_x_backward(x, weight, grad, options),
            ),
            Wrt::Weight => or_flex(
                case.and_then(|c| c.weight_grad(&x)).map(|v| (v, wd)),
                || Flex::conv2d_weight_backward(x, weight, grad, options),
            ),
        }
    }
}

/// Backward step of [`Conv2dBackend::conv2d_fast`] under autodiff, as burn's `conv2d`: the
/// gradients of `x`, `weight` and (with `N = 3` parents) `bias`, from the saved `x` and `weight`
/// (the bias gradient needs neither).
#[derive(Debug)]
struct Conv2dGrad<const N: usize>;

impl<B: Conv2dBackend, const N: usize> Backward<B, N> for Conv2dGrad<N> {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = cp.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = cp.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        for (parent, wrt) in ops.parents.iter().zip([Wrt::Input, Wrt::Weight, Wrt::Bias]) {
            if let Some(node) = parent {
                let of = GradientOf {
                    wrt,
                    options: options.clone(),
                };
                let g = B::conv2d_fast_backward(x.clone(), weight.clone(), grad.clone(), of);
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// [`Conv2dBackend::conv2d_fast`] under autodiff, recorded with the `N` parents `nodes` (`x`,
/// `weight` and, when there is one, `bias`).
fn conv2d_recorded<B: Conv2dBackend, C: CheckpointStrategy, const N: usize>(
    nodes: [NodeGuard; N],
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>> {
    match Conv2dGrad::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let y = inner_forward::<B, C>(x, weight, bias, options.clone());
            prep.finish((x_state, weight_state, options), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(inner_forward::<B, C>(x, weight, bias, options)),
    }
}

/// The inner backend's forward pass of the autodiff tensors `x`, `weight`, `bias`.
fn inner_forward<B: Conv2dBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<B> {
    let (x, weight) = (x.into_primitive(), weight.into_primitive());
    match bias {
        Some(b) => B::conv2d_fast(x, weight, b.into_primitive(), options),
        None => B::conv2d_fast_unbiased(x, weight, options),
    }
}

impl<B: Conv2dBackend, C: CheckpointStrategy> Conv2dBackend for Autodiff<B, C> {
    fn conv2d_fast(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        conv2d_recorded::<B, C, 3>(nodes, x, weight, Some(bias), options)
    }

    fn conv2d_fast_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        conv2d_recorded::<B, C, 2>(nodes, x, weight, None, options)
    }

    /// Not differentiated further (second derivatives are not needed).
    fn conv2d_fast_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        of: GradientOf,
    ) -> FloatTensor<Self> {
        let (x, weight, grad) = (Self::inner(x), Self::inner(weight), Self::inner(grad));
        Self::from_inner(B::conv2d_fast_backward(x, weight, grad, of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Device;
    use proptest::prelude::*;

    /// Values with ties, ±0 and a wide range of magnitudes.
    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![4 => crate::testing::tied_value(), 1 => -1e4f32..1e4]
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn flex(values: &[f32], dims: [usize; 4]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values.to_vec(), dims))
    }

    fn flex_values(t: FlexTensor) -> Vec<f32> {
        elements(&t.to_contiguous()).to_vec()
    }

    /// A convolution's operands: input, weight, bias, output gradient and padding.
    #[derive(Debug)]
    struct Case {
        x: (Vec<f32>, [usize; 4]),
        w: (Vec<f32>, [usize; 4]),
        b: Option<Vec<f32>>,
        g: Vec<f32>,
        pad: [usize; 2],
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            1usize..8,
            1usize..7,
            1usize..20,
            1usize..6,
            1usize..6,
            0usize..3,
            0usize..3,
        )
            .prop_flat_map(|(n, c, o, kh, kw, ph, pw)| {
                let (h, w) = (
                    kh.saturating_sub(2 * ph).max(1)..12,
                    kw.saturating_sub(2 * pw).max(1)..12,
                );
                (Just((n, c, o, kh, kw, ph, pw)), h, w)
            })
            .prop_flat_map(|((n, c, o, kh, kw, ph, pw), h, w)| {
                let (oh, ow) = (h + 2 * ph + 1 - kh, w + 2 * pw + 1 - kw);
                let vec = |len| proptest::collection::vec(value(), len);
                (
                    vec(n * c * h * w),
                    vec(o * c * kh * kw),
                    proptest::option::of(vec(o)),
                    vec(n * o * oh * ow),
                )
                    .prop_map(move |(x, wv, b, g)| Case {
                        x: (x, [n, c, h, w]),
                        w: (wv, [o, c, kh, kw]),
                        b,
                        g,
                        pad: [ph, pw],
                    })
            })
    }

    proptest! {
        /// The kernels give flex's forward values, weight gradients, input gradients and bias
        /// gradients bit for bit, on every path they take (small-channel, general, the general
        /// path of the weight gradient, the untiled transposed convolution), with and without a
        /// bias.
        #[test]
        fn kernels_equal_flex_bit_for_bit(case in case()) {
            let Case { x, w, b, g, pad } = case;
            let options = ConvOptions::new([1, 1], pad, [1, 1], 1);
            let (xt, wt) = (flex(&x.0, x.1), flex(&w.0, w.1));
            let bt = b.map(|b| flex(&b, [1, 1, 1, b.len()]).reshape(burn::tensor::Shape::from(vec![b.len()])));
            let theirs = flex_values(Flex::conv2d(xt.clone(), wt.clone(), bt.clone(), options.clone()));
            if let Some((ours, _)) = forward_kernel(&xt, &wt, bt.as_ref(), &options) {
                prop_assert_eq!(bits(&ours), bits(&theirs));
            }
            let gd = [x.1[0], w.1[0], x.1[2] + 2 * pad[0] + 1 - w.1[2], x.1[3] + 2 * pad[1] + 1 - w.1[3]];
            let gt = flex(&g, gd);
            let theirs = flex_values(Flex::conv2d_weight_backward(xt.clone(), wt.clone(), gt.clone(), options.clone()));
            let backward = GradCase::new(x.1, w.1, &gt, &options).expect("every case fits");
            if let Some(ours) = backward.weight_grad(&xt) {
                prop_assert_eq!(bits(&ours), bits(&theirs));
            }
            let theirs = flex_values(Flex::conv2d_x_backward(xt.clone(), wt.clone(), gt.clone(), options.clone()));
            let ours = backward.input_grad(&wt).expect("every case fits");
            prop_assert_eq!(bits(&ours), bits(&theirs));
            if let Some(bt) = bt {
                let theirs = flex_values(Flex::conv2d_bias_backward(xt, bt, gt.clone()));
                let ours = flex_values(bias_grad(gt));
                prop_assert_eq!(bits(&ours), bits(&theirs));
            }
        }
    }

    /// An output plane of more than flex's 512-position tile (two matrix products per image)
    /// also gives flex's bits.
    #[test]
    fn planes_of_several_tiles_equal_flex_bit_for_bit() {
        let values = |len: usize, seed: usize| -> Vec<f32> {
            (0..len)
                .map(|i| (((i + seed) * 7919) % 2003) as f32 / 1001.0 - 1.0)
                .collect()
        };
        let (xd, wd) = ([2, 5, 30, 30], [7, 5, 3, 3]);
        let x = flex(&values(2 * 5 * 900, 1), xd);
        let w = flex(&values(7 * 5 * 9, 2), wd);
        let b = flex(&values(7, 3), [1, 1, 1, 7]).reshape(burn::tensor::Shape::from(vec![7]));
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let (ours, _) = forward_kernel(&x, &w, Some(&b), &options).expect("the general path");
        let theirs = flex_values(Flex::conv2d(x, w, Some(b), options));
        assert_eq!(bits(&ours), bits(&theirs));
    }

    /// Values and the gradients of `layer` (input, weight, bias if any) on `x` with output
    /// gradient `r`, through `op` under autodiff, as bits.
    fn layer_bits(
        op: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
        layer: &Conv2d,
        x: &Tensor<4>,
        r: &Tensor<4>,
    ) -> Vec<Vec<u32>> {
        let x = x.clone().require_grad();
        let y = op(layer, x.clone());
        let grads = (y.clone() * r.clone()).sum().backward();
        let bits = |t: TensorData| -> Vec<u32> {
            let v = t.try_into_vec::<f32>().expect("f32");
            v.iter().map(|x| x.to_bits()).collect()
        };
        let mut out = vec![
            bits(y.inner().into_data()),
            bits(x.grad(&grads).expect("x tracked").into_data()),
            bits(layer.weight.val().grad(&grads).expect("weight").into_data()),
        ];
        if let Some(bias) = &layer.bias {
            out.push(bits(bias.val().grad(&grads).expect("bias").into_data()));
        }
        out
    }

    /// LeNet-5's two layers at batch 128 (where flex's gemm runs on several threads) and
    /// ResNet-like layers without a bias give burn's values and gradients bit for bit through the
    /// extension, and take sparselab's kernels.
    #[test]
    fn layers_equal_burns_conv_bit_for_bit() {
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        let same = |pad| PaddingConfig2d::Explicit(pad, pad, pad, pad);
        let layers = [
            (
                [128, 1, 28, 28],
                2,
                Conv2dConfig::new([1, 6], [5, 5]).with_padding(same(2)),
            ),
            ([128, 6, 14, 14], 0, Conv2dConfig::new([6, 16], [5, 5])),
            (
                [16, 3, 12, 12],
                1,
                Conv2dConfig::new([3, 16], [3, 3])
                    .with_padding(same(1))
                    .with_bias(false),
            ),
            (
                [16, 16, 12, 12],
                1,
                Conv2dConfig::new([16, 16], [3, 3])
                    .with_padding(same(1))
                    .with_bias(false),
            ),
        ];
        for (shape, pad, config) in layers {
            let layer = config.init(&device);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let y = layer.forward(x.clone());
            let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
            let ours = layer_bits(conv2d, &layer, &x, &r);
            let theirs = layer_bits(|l, x| l.forward(x), &layer, &x, &r);
            assert_eq!(ours, theirs);
            // The kernels ran (the test above would also pass if everything fell back to flex).
            let prim = |t: Tensor<4>| {
                let t = t.inner().try_into_primitive::<Flex>().ok();
                t.expect("flex")
            };
            let (xf, wf) = (prim(x), prim(layer.weight.val()));
            let bf = layer.bias.as_ref().map(|b| {
                let b = b.val().inner().try_into_primitive::<Flex>().ok();
                b.expect("flex")
            });
            let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
            assert!(forward_kernel(&xf, &wf, bf.as_ref(), &options).is_some());
            let rf = prim(r);
            let backward = GradCase::new(dims(&xf), dims(&wf), &rf, &options).expect("fits");
            assert!(backward.weight_grad(&xf).is_some());
            assert!(backward.input_grad(&wf).is_some());
        }
    }
}
