//! Max pooling with a `k×k` window and stride `k` (no padding, floor mode): LeNet-5's pooling
//! (SPEC.md §4).
//!
//! ```text
//! y[n, c, i, j] = max_{0 ≤ p, q < k} x[n, c, k·i + p, k·j + q]
//! ∂L/∂x[n, c, a, b] = ∂L/∂y[n, c, i, j] if (a, b) is the window's arg max, else 0
//! ```
//!
//! On flex this runs as a sparselab backend extension ([`MaxPoolBackend`]): one pass over the
//! input forward, and backward one pass that finds each window's arg max again from the input,
//! so no index tensor is stored; a 2×2 backward routes sixteen windows at a time at the CPU's
//! full vector width ([`WindowBlock`]). burn-flex's general pooling kernel handles any window,
//! stride, padding and dilation with 64-bit indices, and on LeNet-5 it was a large share of the
//! training step (docs/performance.md has the measurements).
//!
//! **Same bits as burn's `max_pool2d`** by construction, forward and backward: max pooling only
//! selects values, and the arg max follows burn-flex's rule (the first maximum in row-major
//! window order; a NaN always wins, the last one in the window), each input position gets at most
//! one gradient (windows do not overlap), written as `0 + g` like flex's scatter-add into zeros
//! (so a gradient of −0 arrives as +0 in both). A property test checks values and gradients
//! against burn's op on inputs full of ties. Other backends (WGPU) and other dtypes use burn's op.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor,
};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use sparselab_core::fused::elements;
use sparselab_core::widest;

/// `k×k` max pooling with stride `k` of `x` `[N, C, H, W]`: `[N, C, ⌊H/k⌋, ⌊W/k⌋]`.
pub fn max_pool(x: Tensor<4>, k: usize) -> Tensor<4> {
    if super::runs_kernel(&x) && k > 0 {
        Tensor::from_dispatch(<Dispatch as MaxPoolBackend>::max_pool(x.into_dispatch(), k))
    } else {
        burn::tensor::module::max_pool2d(x, MaxPoolOptions::new([k, k]).with_stride([k, k]))
    }
}

/// The pooling kernels as a backend extension: flex runs them, autodiff differentiates them.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPoolBackend: Backend {
    /// `k×k` max pooling with stride `k`.
    fn max_pool(x: FloatTensor<Self>, k: usize) -> FloatTensor<Self>;
    /// The gradient with respect to `x` of [`MaxPoolBackend::max_pool`], given the output's.
    fn max_pool_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        k: usize,
    ) -> FloatTensor<Self>;
}

/// One pooling's sizes: input `[N, C, H, W]`, window and stride `k`, output `⌊H/k⌋×⌊W/k⌋`
/// (computed once: the kernels' inner loops read them).
#[derive(Clone, Copy)]
struct Plan {
    shape: [usize; 4],
    k: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Plan {
    fn new(x: &FlexTensor, k: usize) -> Self {
        let s = x.layout().shape();
        let shape = [s[0], s[1], s[2], s[3]];
        Self {
            shape,
            k,
            w: shape[3],
            oh: shape[2] / k,
            ow: shape[3] / k,
        }
    }

    fn in_plane(&self) -> usize {
        self.shape[2] * self.w
    }

    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    fn out_shape(&self) -> [usize; 4] {
        [self.shape[0], self.shape[1], self.oh, self.ow]
    }

    /// The two input rows under output row `i` of a 2×2 pooling, as far as windows reach.
    fn row_pair<'a>(&self, plane: &'a [f32], i: usize) -> (&'a [f32], &'a [f32]) {
        let top = 2 * i * self.w;
        (
            &plane[top..][..2 * self.ow],
            &plane[top + self.w..][..2 * self.ow],
        )
    }

    /// Offset in the plane of window `(i, j)`'s arg max, by burn-flex's rule.
    #[inline(always)]
    fn arg_max(&self, plane: &[f32], i: usize, j: usize) -> usize {
        let (w, k) = (self.w, self.k);
        let first = k * i * w + k * j;
        let (mut best, mut at) = (plane[first], first);
        for p in 0..k {
            let row = first + p * w;
            for (q, &v) in plane[row..row + k].iter().enumerate() {
                let take = (v > best) | v.is_nan();
                best = if take { v } else { best };
                at = if take { row + q } else { at };
            }
        }
        at
    }

    /// Pools one input plane into `y` (one output plane).
    #[inline(always)]
    fn pool_plane(&self, plane: &[f32], y: &mut [f32]) {
        for (i, y) in y.chunks_exact_mut(self.ow).enumerate() {
            if self.k == 2 {
                let (r0, r1) = self.row_pair(plane, i);
                let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
                for (y, (a, b)) in y.iter_mut().zip(windows) {
                    *y = max_of_four([a[0], a[1], b[0], b[1]]);
                }
            } else {
                for (j, y) in y.iter_mut().enumerate() {
                    *y = plane[self.arg_max(plane, i, j)];
                }
            }
        }
    }

    /// Writes into `dx` (zeros, one input plane) the gradient of one plane, given the output
    /// plane's gradient `g`. flex scatter-adds into zeros, so the arg max gets `0 + g` (−0
    /// becomes +0).
    #[inline(always)]
    fn backward_plane(&self, plane: &[f32], g: &[f32], dx: &mut [f32]) {
        if self.k == 2 {
            // Every position of a window is written (zero off the arg max), so the loop has no
            // data-dependent store.
            for first in (0..g.len()).step_by(LANES) {
                let len = LANES.min(g.len() - first);
                let mut block = WindowBlock::default();
                self.gather(plane, first, len, &mut block);
                block.g[..len].copy_from_slice(&g[first..first + len]);
                block.route();
                self.scatter(&block, first, len, dx);
            }
        } else {
            for (i, g) in g.chunks_exact(self.ow).enumerate() {
                for (j, g) in g.iter().enumerate() {
                    dx[self.arg_max(plane, i, j)] = 0.0 + g;
                }
            }
        }
    }

    /// The runs of windows `first..first + len` (row-major in the output plane) within output
    /// rows: `(output row, first column, first slot in a block, windows)`.
    #[inline(always)]
    fn runs(&self, first: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let ow = self.ow;
        let mut slot = 0;
        std::iter::from_fn(move || {
            (slot < len).then(|| {
                let (i, j) = ((first + slot) / ow, (first + slot) % ow);
                let run = (ow - j).min(len - slot);
                let out = (i, j, slot, run);
                slot += run;
                out
            })
        })
    }

    /// Copies the four values of windows `first..first + len` of a 2×2 pooling into `block`.
    #[inline(always)]
    fn gather(&self, plane: &[f32], first: usize, len: usize, block: &mut WindowBlock) {
        for (i, j, slot, run) in self.runs(first, len) {
            let (r0, r1) = self.row_pair(plane, i);
            block.top[2 * slot..][..2 * run].copy_from_slice(&r0[2 * j..][..2 * run]);
            block.bottom[2 * slot..][..2 * run].copy_from_slice(&r1[2 * j..][..2 * run]);
        }
    }

    /// Writes the routed gradients of windows `first..first + len` from `block` into `dx`.
    #[inline(always)]
    fn scatter(&self, block: &WindowBlock, first: usize, len: usize, dx: &mut [f32]) {
        let w = self.w;
        for (i, j, slot, run) in self.runs(first, len) {
            let (d0, d1) = dx[2 * i * w..][..2 * w].split_at_mut(w);
            d0[2 * j..][..2 * run].copy_from_slice(&block.top[2 * slot..][..2 * run]);
            d1[2 * j..][..2 * run].copy_from_slice(&block.bottom[2 * slot..][..2 * run]);
        }
    }
}

/// The f32 lanes of the widest vector unit: 2×2 windows are routed this many at a time.
const LANES: usize = sparselab_core::wide::LANES;

/// [`LANES`] 2×2 windows side by side, `(top left, top right)` of window `s` at `top[2s..]` and
/// its bottom row at `bottom[2s..]`, with their output gradients. A 2×2 pooling's windows are
/// interleaved pairs in two input rows, and LeNet-5's rows hold 14 and 5 windows: copied into
/// fixed-size blocks the routing runs over whole vectors (2.4 times as fast on LeNet-5's first
/// pooling as one window at a time, docs/performance.md). Unused slots hold zeros.
#[derive(Default)]
struct WindowBlock {
    top: [f32; 2 * LANES],
    bottom: [f32; 2 * LANES],
    g: [f32; LANES],
}

impl WindowBlock {
    /// Replaces each window's four values with its gradient: `0 + g` at the arg max
    /// ([`arg_max_of_four`]), `0` elsewhere.
    #[inline(always)]
    fn route(&mut self) {
        for s in 0..LANES {
            let (t, b) = (
                &mut self.top[2 * s..2 * s + 2],
                &mut self.bottom[2 * s..2 * s + 2],
            );
            let at = arg_max_of_four([t[0], t[1], b[0], b[1]]);
            let g = (0.0 + self.g[s]).to_bits();
            let to = |p: usize| f32::from_bits(g * at[p]);
            (t[0], t[1], b[0], b[1]) = (to(0), to(1), to(2), to(3));
        }
    }
}

/// The maximum of a 2×2 window `[top left, top right, bottom left, bottom right]` by
/// [`Plan::arg_max`]'s rule.
#[inline(always)]
fn max_of_four(v: [f32; 4]) -> f32 {
    let mut best = v[0];
    for &x in &v[1..] {
        let take = (x > best) | x.is_nan();
        best = if take { x } else { best };
    }
    best
}

/// Which position of a 2×2 window is its arg max by [`Plan::arg_max`]'s rule, as four 0/1 flags
/// computed in integer arithmetic (no branch, no select): the last NaN if there is one, else the
/// first position equal to the maximum (later equal values are not strictly greater; `−0 == +0`,
/// and the first of them is the maximum).
#[inline(always)]
fn arg_max_of_four(v: [f32; 4]) -> [u32; 4] {
    let m = max_of_four(v);
    let e = v.map(|x| u32::from(x == m));
    let n = v.map(|x| u32::from(x.is_nan()));
    let any_nan = n[0] | n[1] | n[2] | n[3];
    let last_nan = [
        n[0] & !(n[1] | n[2] | n[3]),
        n[1] & !(n[2] | n[3]),
        n[2] & !n[3],
        n[3],
    ];
    let first_max = [
        e[0],
        e[1] & !e[0],
        e[2] & !(e[0] | e[1]),
        e[3] & !(e[0] | e[1] | e[2]),
    ];
    std::array::from_fn(|p| ((any_nan & last_nan[p]) | (!any_nan & first_max[p])) & 1)
}

impl MaxPoolBackend for Flex {
    fn max_pool(x: FlexTensor, k: usize) -> FlexTensor {
        let x = x.to_contiguous();
        let plan = Plan::new(&x, k);
        let (in_plane, out_plane) = (plan.in_plane(), plan.out_plane());
        let mut y = vec![0.0f32; plan.shape[0] * plan.shape[1] * out_plane];
        if out_plane > 0 {
            y.par_chunks_mut(out_plane)
                .zip(elements(&x).par_chunks(in_plane))
                .for_each(|(y, plane)| plan.pool_plane(plane, y));
        }
        FlexTensor::from_data(TensorData::new(y, plan.out_shape()))
    }

    fn max_pool_backward(x: FlexTensor, grad: FlexTensor, k: usize) -> FlexTensor {
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let plan = Plan::new(&x, k);
        let (in_plane, out_plane) = (plan.in_plane(), plan.out_plane());
        let mut dx = vec![0.0f32; plan.shape.iter().product()];
        if out_plane > 0 {
            let planes = elements(&x).par_chunks(in_plane);
            dx.par_chunks_mut(in_plane)
                .zip(planes.zip(elements(&grad).par_chunks(out_plane)))
                .for_each(|(dx, (plane, g))| widest!(plan.backward_plane(plane, g, dx)));
        }
        FlexTensor::from_data(TensorData::new(dx, plan.shape))
    }
}

/// Backward step of [`MaxPoolBackend::max_pool`] under autodiff: its state is the input's node
/// and the window size.
#[derive(Debug)]
struct MaxPoolGrad;

impl<B: MaxPoolBackend> Backward<B, 1> for MaxPoolGrad {
    type State = (NodeId, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, k) = ops.state;
        if let Some(parent) = parent {
            let x = cp.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
            grads.register::<B>(parent.id, B::max_pool_backward(x, grad, k));
        }
    }
}

impl<B: MaxPoolBackend, C: CheckpointStrategy> MaxPoolBackend for Autodiff<B, C> {
    fn max_pool(x: FloatTensor<Self>, k: usize) -> FloatTensor<Self> {
        match MaxPoolGrad
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish((state, k), B::max_pool(x.into_primitive(), k))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool(x.into_primitive(), k)),
        }
    }

    /// Not differentiated further (second derivatives are not needed).
    fn max_pool_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        k: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool_backward(Self::inner(x), Self::inner(grad), k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use proptest::prelude::*;

    /// Values with many ties (and ±0, NaN), so the arg-max rule is exercised.
    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![5 => crate::testing::tied_value(), 1 => Just(f32::NAN)]
    }

    /// Pooled values and input gradients (as bits) of `pool` on `x` with upstream gradient `r`.
    fn run(
        pool: impl Fn(Tensor<4>) -> Tensor<4>,
        x: &[f32],
        dims: [usize; 4],
        r: &[f32],
    ) -> (Vec<u32>, Vec<u32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), dims), &device).require_grad();
        let y = pool(x.clone());
        let r = Tensor::<4>::from_data(TensorData::new(r.to_vec(), y.dims()), &device);
        let grads = (y.clone() * r).sum().backward();
        let bits = |t: Tensor<4>| -> Vec<u32> {
            let v = t.into_data().try_into_vec::<f32>().expect("f32");
            v.iter().map(|x| x.to_bits()).collect()
        };
        let dx = x.grad(&grads).expect("x is tracked");
        (bits(y.inner()), bits(dx))
    }

    proptest! {
        /// Forward values and backward gradients equal burn's `max_pool2d` bit for bit.
        #[test]
        fn equals_burns_max_pool_bit_for_bit(
            (dims, k, x, r) in (1usize..3, 1usize..4, 1usize..40, 1usize..40, 1usize..4)
                .prop_filter("window fits", |(_, _, h, w, k)| h >= k && w >= k)
                .prop_flat_map(|(n, c, h, w, k)| {
                    let out = n * c * (h / k) * (w / k);
                    (
                        Just([n, c, h, w]),
                        Just(k),
                        proptest::collection::vec(value(), n * c * h * w),
                        proptest::collection::vec(value().prop_filter("finite", |v| v.is_finite()), out),
                    )
                }),
        ) {
            let ours = run(|x| max_pool(x, k), &x, dims, &r);
            let burns = run(
                |x| burn::tensor::module::max_pool2d(x, MaxPoolOptions::new([k, k]).with_stride([k, k])),
                &x,
                dims,
                &r,
            );
            prop_assert_eq!(ours, burns);
        }
    }

    /// Training and evaluation tensors take the kernel (the test above would also pass if
    /// `max_pool` always fell back to burn's op), and the kernel pools.
    #[test]
    fn flex_takes_the_extension() {
        let x = |device: &Device| Tensor::<4>::zeros([1, 1, 2, 2], device);
        assert!(super::super::runs_kernel(&x(&Device::flex())));
        assert!(super::super::runs_kernel(&x(&Device::flex().autodiff())));
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 2.0, 0.0], [1, 1, 2, 2]),
            &device,
        );
        let out = <Dispatch as MaxPoolBackend>::max_pool(x.into_dispatch(), 2);
        let y = Tensor::<4>::from_dispatch(out)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        assert_eq!(y, vec![3.0]);
    }
}
