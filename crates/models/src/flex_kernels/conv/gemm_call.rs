//! The matrix product of flex's convolutions, called as flex calls it.

/// A matrix read through strides: `(values, column stride, row stride)`.
pub(super) type Strided<'a> = (&'a [f32], usize, usize);

/// `dst = a·b` for `a` `m × k` and `b` `k × n` read through strides, into `dst` `m × n`
/// row-major, as burn-flex 0.22.1's convolutions call `gemm::gemm` (`gemm_f32` in `ops/conv.rs`,
/// `conv_transpose_gemm_f32` in `ops/conv_transpose.rs`): destination not read (α = 0, β = 1),
/// on rayon's pool when `m·n·k ≥ 192³`. The same arguments give the same bits, so this must
/// change when flex's calls do.
pub(super) fn gemm_like_flex(dst: &mut [f32], [m, k, n]: [usize; 3], a: Strided, b: Strided) {
    let reach = |(v, cs, rs): Strided, rows: usize, cols: usize| {
        rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < v.len()
    };
    assert!(dst.len() == m * n && reach(a, m, k) && reach(b, k, n));
    let parallelism = if m * n * k >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `dst` holds m × n values (row stride n); every element of `a` (m × k) and `b`
    // (k × n) read through its strides lies inside its slice (checked above); `dst` is a
    // distinct mutable slice, so it overlaps neither.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.0.as_ptr(),
            a.1 as isize,
            a.2 as isize,
            b.0.as_ptr(),
            b.1 as isize,
            b.2 as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
