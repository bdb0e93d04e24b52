//! flex's input gradient of a convolution (a transposed convolution), on both cores.
//!
//! burn computes `∂L/∂x` of `y = conv(x, w)` (stride 1) as the transposed convolution of the
//! output gradient `g` `[N, O, OH, OW]` with `w` `[O, C, KH, KW]`. burn-flex computes it, for
//! each image `b`, as one matrix product and a scatter (col2im):
//!
//! ```text
//! cols[(c·KH + p)·KW + q, s] = Σ_o w[o, c, p, q] · g[b, o, s]        (gemm, s = output position)
//! ∂L/∂x[b, c, i + p − pad_h, j + q − pad_w] += cols[(c·KH + p)·KW + q, i·OW + j]
//! ```
//!
//! the scatter adding, for each input-gradient value, its terms in kernel order `(p, q)` to a
//! running sum that starts at 0. [`x_grad`] makes the same gemm call and adds the same terms in
//! the same order, so its result is flex's bit for bit. flex runs the images one after another on
//! one thread when the output is below its parallel threshold (LeNet-5's second layer at batch
//! 128: 150 528 values, threshold 262 144); [`x_grad`] runs them on both cores.

use super::gemm_call::gemm_like_flex;
use super::scratch;
use rayon::prelude::*;

/// flex's untiled limit: larger column buffers take its tiled loop, which sparselab leaves to
/// flex.
pub(super) const COLUMNS_BYTES: usize = 8 * 1024 * 1024;

/// The input gradient `[N, C, H, W]` (contiguous) of a stride-1 convolution with weight `w`
/// `[O, C, KH, KW]` and padding `pad`, given the output gradient `g` `[N, O, OH, OW]`
/// (contiguous), as flex's untiled transposed convolution computes it.
pub(super) fn x_grad(
    g: &[f32],
    gd: [usize; 4],
    w: &[f32],
    wd: [usize; 4],
    pad: [usize; 2],
) -> Vec<f32> {
    let [n, o, oh, ow] = gd;
    let [_, c, kh, kw] = wd;
    let (h, wi) = (oh + kh - 1 - 2 * pad[0], ow + kw - 1 - 2 * pad[1]);
    let (rows, positions) = (c * kh * kw, oh * ow);
    let mut out = vec![0.0f32; n * c * h * wi];
    if out.is_empty() {
        return out;
    }
    // Per kernel row p (and column q): the output-gradient rows i (columns j) whose input-gradient
    // position i + p − pad lies in [0, H): flex's `valid_in_range`.
    let valid = |k: usize, pad: usize, size_in: usize, size_out: usize| {
        let start = pad.saturating_sub(k);
        let end = (size_out + pad).saturating_sub(k).min(size_in);
        (start.min(end), end)
    };
    out.par_chunks_mut(c * h * wi)
        .enumerate()
        .for_each(|(b, out)| {
            scratch::with(&scratch::COLUMNS, rows * positions, |cols| {
                // wᵀ (w is o × rows, row-major) times this image's gradient (o × positions);
                // gemm writes every value of `cols` without reading it.
                let image = &g[b * o * positions..][..o * positions];
                gemm_like_flex(
                    cols,
                    [rows, o, positions],
                    (w, rows, 1),
                    (image, 1, positions),
                );
                for (ci, out) in out.chunks_exact_mut(h * wi).enumerate() {
                    for p in 0..kh {
                        let (i0, i1) = valid(p, pad[0], oh, h);
                        for q in 0..kw {
                            let (j0, j1) = valid(q, pad[1], ow, wi);
                            if i0 >= i1 || j0 >= j1 {
                                continue;
                            }
                            let col = &cols[((ci * kh + p) * kw + q) * positions..][..positions];
                            for i in i0..i1 {
                                let at = (i + p - pad[0]) * wi + j0 + q - pad[1];
                                let dst = &mut out[at..][..j1 - j0];
                                let src = &col[i * ow + j0..][..j1 - j0];
                                for (d, &s) in dst.iter_mut().zip(src) {
                                    *d += s;
                                }
                            }
                        }
                    }
                }
            });
        });
    out
}
