//! flex's general convolution, the same products in the same order with cheaper copies.
//!
//! burn-flex computes a convolution it has no special path for (`conv3d_impl`) as, for each
//! image `b` and each tile of up to 512 output positions, one matrix product
//!
//! ```text
//! out[b, o, p] = Σ_j  W[o, j] · C[p, j],   j = (ky·KW + kx)·C_in + c  (kernel position, then channel)
//! W[o, j] = w[o, c, ky, kx],   C[p, j] = x[b, c, y(p) + ky − pad_h, x(p) + kx − pad_w]  (0 outside)
//! ```
//!
//! with `gemm::gemm` on the row-major `W` (`C_out × K`) and `C` (`tile × K`). Its weight
//! gradient is the same routine on the batch-transposed tensors (burn computes
//! `∂L/∂w = conv(xᵀ, gᵀ)ᵀ`, `ᵀ` swapping the first two dimensions). The sums are gemm's, so
//! [`conv`] builds exactly the matrices flex builds and makes exactly its gemm call: the result is
//! flex's bit for bit (tested against flex's op). What differs is the copying around it, which
//! took most of flex's time for LeNet-5 (docs/performance.md): the transposed operands are read
//! through strides instead of being copied first, the channel-last copies are blocked
//! transposes on both cores, and the columns are copied one kernel row (`KW·C_in` values) at a time,
//! on both cores when one image's tile is large (LeNet-5's first weight gradient is one image of
//! 128 channels: a 25 × 100 352 matrix).

use super::gemm_call::gemm_like_flex;
use super::scratch;
use rayon::prelude::*;
use sparselab_core::widest;

/// flex's tile of output positions per matrix product.
const TILE: usize = 512;

/// A 4-D f32 tensor read through strides; the last two dimensions are contiguous.
#[derive(Clone, Copy, Debug)]
pub(super) struct View<'a> {
    pub data: &'a [f32],
    pub dims: [usize; 4],
    pub strides: [usize; 4],
}

impl<'a> View<'a> {
    /// A contiguous (row-major) tensor of shape `dims`.
    pub fn contiguous(data: &'a [f32], dims: [usize; 4]) -> Self {
        let strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
        Self {
            data,
            dims,
            strides,
        }
    }

    /// The same tensor with its first two dimensions swapped (no copy).
    pub fn swap_first_two(self) -> Self {
        let [a, b, h, w] = self.dims;
        let [sa, sb, sh, sw] = self.strides;
        Self {
            data: self.data,
            dims: [b, a, h, w],
            strides: [sb, sa, sh, sw],
        }
    }

    /// `t[i, j, …]` as a matrix `[dims[1]][dims[2]·dims[3]]` (row stride `strides[1]`): its
    /// transpose `[dims[2]·dims[3]][dims[1]]` written into `out`, in 8 × 8 tiles held in
    /// registers, on both cores when large.
    fn transpose_inner(&self, i: usize, out: &mut [f32]) {
        let plan = Transpose {
            rows: self.dims[1],
            stride: self.strides[1],
        };
        let src = &self.data[i * self.strides[0]..];
        // 64 columns per call.
        let cols = 8 * TILE_T;
        let run = |(block, out): (usize, &mut [f32])| widest!(plan.columns(src, block * cols, out));
        if out.len() >= 1 << 16 {
            out.par_chunks_mut(plan.rows * cols)
                .enumerate()
                .for_each(run);
        } else {
            out.chunks_mut(plan.rows * cols).enumerate().for_each(run);
        }
    }
}

/// The side of [`Transpose`]'s tiles.
const TILE_T: usize = 8;

/// A row-major matrix of `rows` rows (row stride `stride`) to transpose.
#[derive(Clone, Copy)]
struct Transpose {
    rows: usize,
    stride: usize,
}

impl Transpose {
    /// Columns `c0..` of `src` as rows of `out` (each `rows` long): whole 8 × 8 tiles through
    /// registers, the rest one value at a time.
    #[inline(always)]
    fn columns(self, src: &[f32], c0: usize, out: &mut [f32]) {
        let (rows, stride) = (self.rows, self.stride);
        let r0 = rows / TILE_T * TILE_T;
        for (t, out) in out.chunks_exact_mut(rows * TILE_T).enumerate() {
            let c0 = c0 + t * TILE_T;
            for r0 in (0..r0).step_by(TILE_T) {
                let mut tile = [[0.0f32; TILE_T]; TILE_T];
                for (r, line) in tile.iter_mut().enumerate() {
                    line.copy_from_slice(&src[(r0 + r) * stride + c0..][..TILE_T]);
                }
                for (c, o) in out.chunks_exact_mut(rows).enumerate() {
                    let o: &mut [f32; TILE_T] =
                        (&mut o[r0..r0 + TILE_T]).try_into().expect("a tile row");
                    for r in 0..TILE_T {
                        o[r] = tile[r][c];
                    }
                }
            }
        }
        let tiled = out.len() / (rows * TILE_T) * TILE_T;
        for (c, o) in out.chunks_exact_mut(rows).enumerate() {
            let skip = if c < tiled { r0 } else { 0 };
            for (r, o) in o.iter_mut().enumerate().skip(skip) {
                *o = src[r * stride + c0 + c];
            }
        }
    }
}

/// The convolution of `x` `[N, C, H, W]` with `w` `[O, C, KH, KW]` (stride 1, dilation 1,
/// zero padding `pad` on both sides of each axis) as flex's `conv3d_impl` computes it, without
/// bias: `[N, O, OH, OW]` contiguous.
pub(super) fn conv(x: View, w: View, pad: [usize; 2]) -> Vec<f32> {
    let [n, c, h, wd] = x.dims;
    let [o, _, kh, kw] = w.dims;
    let g = Geometry {
        c,
        h,
        w: wd,
        kh,
        kw,
        pad,
        oh: h + 2 * pad[0] + 1 - kh,
        ow: wd + 2 * pad[1] + 1 - kw,
    };
    let (k, spatial) = (c * kh * kw, g.oh * g.ow);
    let tiles = spatial.div_ceil(TILE);
    let ks = row_stride(k);
    // W[o][(ky·KW + kx)·C + c] and the input channel-last, x[b][y][x][c].
    let products: Vec<Vec<f32>> = scratch::with(&scratch::WEIGHT, o * ks, |w_flat| {
        w_flat
            .par_chunks_mut(ks)
            .enumerate()
            .for_each(|(i, out)| w.transpose_inner(i, &mut out[..k]));
        scratch::with(&scratch::INPUT, n * h * wd * c, |x_nhwc| {
            x_nhwc
                .par_chunks_mut(h * wd * c)
                .enumerate()
                .for_each(|(b, out)| x.transpose_inner(b, out));
            (0..n * tiles)
                .into_par_iter()
                .map(|bt| {
                    let (b, start) = (bt / tiles, (bt % tiles) * TILE);
                    let len = TILE.min(spatial - start);
                    let image = &x_nhwc[b * h * wd * c..][..h * wd * c];
                    scratch::with(&scratch::COLUMNS, len * ks, |columns| {
                        g.columns(image, start, ks, columns);
                        // W (o × k, row-major) times Cᵀ (C is len × k, row-major), both with
                        // row stride `ks`.
                        let mut product = vec![0.0f32; o * len];
                        let (a, b) = ((&*w_flat, 1, ks), (&*columns, ks, 1));
                        gemm_like_flex(&mut product, [o, k, len], a, b);
                        product
                    })
                })
                .collect()
        })
    });
    let mut out = vec![0.0f32; n * o * spatial];
    out.par_chunks_mut(o * spatial)
        .enumerate()
        .for_each(|(b, out)| {
            for t in 0..tiles {
                let (start, product) = (t * TILE, &products[b * tiles + t]);
                let len = TILE.min(spatial - start);
                for (oc, row) in product.chunks_exact(len).enumerate() {
                    out[oc * spatial + start..][..len].copy_from_slice(row);
                }
            }
        });
    out
}

/// The row stride of the matrices handed to gemm for rows of `k` values: `k`, or 16 values
/// (one cache line) more where `k` is a multiple of 256. gemm reads (or packs) a panel of up to 48
/// rows at a time; rows a multiple of 1 KiB apart map to the same few sets of the L1 cache and
/// evict each other (LeNet-5's weight gradients have `k` = 100 352 and 12 800; packing the
/// second one's columns took 69 % of it in a profile at `k` = 8 192). The stride changes which addresses gemm reads, not what it
/// computes: its path and blocking depend on the sizes and on which strides are 1
/// (docs/performance.md). `layers_equal_burns_conv_bit_for_bit` covers it: its weight gradients
/// have `k` = 100 352, 12 800 and 2 304, on gemm's blocked and horizontal paths.
fn row_stride(k: usize) -> usize {
    if k >= 256 && k.is_multiple_of(256) {
        k + 16
    } else {
        k
    }
}

/// One convolution's sizes (input channels and plane, kernel, padding, output plane).
#[derive(Clone, Copy)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// Fills `columns` (`len` rows of `C·KH·KW` values, `stride` apart) with the patches of
    /// output positions `start..start + len` of one channel-last image, zeros where the patch
    /// leaves the image: one copy per kernel row. Rows are filled on both cores when the matrix
    /// is large; the values between a row's end and the next row are left as they were.
    fn columns(&self, image: &[f32], start: usize, stride: usize, columns: &mut [f32]) {
        let k = self.c * self.kh * self.kw;
        let row = |(l, out): (usize, &mut [f32])| self.patch(image, start + l, &mut out[..k]);
        if columns.len() >= 1 << 18 {
            columns.par_chunks_mut(stride).enumerate().for_each(row);
        } else {
            columns.chunks_mut(stride).enumerate().for_each(row);
        }
    }

    /// The patch of output position `p` (row-major in the output plane) as one column row.
    fn patch(&self, image: &[f32], p: usize, out: &mut [f32]) {
        let (y, x) = (p / self.ow, p % self.ow);
        let c = self.c;
        // Kernel columns kx whose input column x + kx − pad_w lies in [0, W).
        let kx0 = self.pad[1].saturating_sub(x).min(self.kw);
        let kx1 = (self.w + self.pad[1])
            .saturating_sub(x)
            .min(self.kw)
            .max(kx0);
        for (ky, out) in out.chunks_exact_mut(self.kw * c).enumerate() {
            let iy = (y + ky).wrapping_sub(self.pad[0]);
            if iy >= self.h {
                out.fill(0.0);
                continue;
            }
            out[..kx0 * c].fill(0.0);
            out[kx1 * c..].fill(0.0);
            if kx0 < kx1 {
                let from = (iy * self.w + x + kx0 - self.pad[1]) * c;
                out[kx0 * c..kx1 * c].copy_from_slice(&image[from..from + (kx1 - kx0) * c]);
            }
        }
    }
}
