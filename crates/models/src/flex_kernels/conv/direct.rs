//! flex's small-channel convolution, the same sums sixteen output columns at a time.
//!
//! burn-flex computes a convolution with at most 4 input and 16 output channels (LeNet-5's first
//! layer: 1 → 6) without a matrix product: each output plane starts at zero and, input channel by
//! input channel and kernel position by kernel position (row-major), adds `x·w`, skipping the
//! positions where the kernel leaves the image; the bias, if any, is added last:
//!
//! ```text
//! out[b, o, y, x] = (((0 + x[b,0,y−p,x−p]·w[o,0,0,0]) + x[b,0,y−p,x−p+1]·w[o,0,0,1]) + …) + bias[o]
//! ```
//!
//! each product rounded, then each sum (no fused multiply-add). [`conv`] makes the same
//! operations in the same order for every output value, but keeps sixteen neighbouring outputs of
//! a row in one vector register through all `C·KH·KW` terms, where flex's loop runs over the
//! whole plane once per kernel position with rows of 24–28 values (its inner loops are mostly
//! set-up). It reads the image from a zero-padded copy, so the skipped terms are added as
//! `0·w`: that changes no sum while `w` is finite, because a running sum that starts at +0 is
//! never −0 (`a + (−a)` and `+0 + (−0)` are +0 when rounding to nearest) and adding ±0 to
//! anything else leaves it unchanged. With a non-finite weight and padding flex's result differs
//! (it writes NaN where a padded term would multiply ±∞), so the caller leaves that case to flex.

use rayon::prelude::*;
use sparselab_core::widest;

/// Output values of a row kept in registers at once (one AVX-512 vector).
const LANES: usize = 16;

/// The convolution of `x` `[N, C, H, W]` with `w` `[O, C, KH, KW]` (both contiguous; stride 1,
/// dilation 1, zero padding `pad` on both sides of each axis) plus `bias` `[O]` if any, as flex's
/// small-channel path computes it: `[N, O, OH, OW]` contiguous. `w` must be finite when `pad` is
/// not zero.
pub(super) fn conv(
    x: &[f32],
    dims: [usize; 4],
    w: &[f32],
    w_dims: [usize; 4],
    bias: Option<&[f32]>,
    pad: [usize; 2],
) -> Vec<f32> {
    let [n, c, h, wd] = dims;
    let [o, _, kh, kw] = w_dims;
    let (oh, ow) = (h + 2 * pad[0] + 1 - kh, wd + 2 * pad[1] + 1 - kw);
    // A padded image row holds every value a 16-wide block of outputs reads.
    let stride = ow.div_ceil(LANES) * LANES + kw - 1;
    let rows = oh + kh - 1;
    let mut out = vec![0.0f32; n * o * oh * ow];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(o * oh * ow)
        .enumerate()
        .for_each(|(b, out)| {
            let mut padded = vec![0.0f32; c * rows * stride];
            for ci in 0..c {
                let plane = &x[(b * c + ci) * h * wd..][..h * wd];
                for (y, src) in plane.chunks_exact(wd).enumerate() {
                    let at = (ci * rows + y + pad[0]) * stride + pad[1];
                    padded[at..at + wd].copy_from_slice(src);
                }
            }
            let plan = Plan {
                c,
                kh,
                kw,
                oh,
                ow,
                stride,
                rows,
            };
            widest!(plan.image(&padded, w, bias, out));
        });
    out
}

/// One image's sizes for [`Plan::image`].
#[derive(Clone, Copy)]
struct Plan {
    c: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    rows: usize,
}

impl Plan {
    /// All output planes of one image from its padded copy.
    #[inline(always)]
    fn image(self, padded: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let taps = self.c * self.kh * self.kw;
        for (oc, plane) in out.chunks_exact_mut(self.oh * self.ow).enumerate() {
            let w = &w[oc * taps..][..taps];
            for (y, row) in plane.chunks_exact_mut(self.ow).enumerate() {
                for x0 in (0..self.ow).step_by(LANES) {
                    let mut acc = self.block(padded, w, y, x0);
                    if let Some(bias) = bias {
                        for a in &mut acc {
                            *a += bias[oc];
                        }
                    }
                    let n = LANES.min(self.ow - x0);
                    row[x0..x0 + n].copy_from_slice(&acc[..n]);
                }
            }
        }
    }

    /// The sums of outputs `x0..x0 + LANES` of row `y` of one output plane (weights `w`, input
    /// channel by channel, then row-major), in one register.
    #[inline(always)]
    fn block(self, padded: &[f32], w: &[f32], y: usize, x0: usize) -> [f32; LANES] {
        let mut acc = [0.0f32; LANES];
        for ci in 0..self.c {
            for ky in 0..self.kh {
                let start = (ci * self.rows + y + ky) * self.stride + x0;
                let line = &padded[start..start + self.kw - 1 + LANES];
                let taps = &w[(ci * self.kh + ky) * self.kw..][..self.kw];
                for (&wv, src) in taps.iter().zip(line.windows(LANES)) {
                    let src: &[f32; LANES] = src.try_into().expect("a window of LANES values");
                    for l in 0..LANES {
                        acc[l] += src[l] * wv;
                    }
                }
            }
        }
        acc
    }
}
