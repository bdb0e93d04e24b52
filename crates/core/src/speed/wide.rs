//! Kernels compiled for the widest vector unit the CPU has, chosen at run time.
//!
//! The workspace is compiled for the baseline x86-64 target (SSE2: four f32 lanes), so that a
//! binary runs on any machine. A loop written in plain Rust inside [`widest`] is compiled three
//! times (AVX-512, AVX2 + FMA, baseline) and the widest variant the CPU supports runs. It is
//! used where a loop is bound by arithmetic rather than memory: every optimiser's per-element
//! step ([`crate::fused::map_in_place`]), the proxes' soft-threshold loops, the threshold maps,
//! the group lasso's Newton solve and [`crate::powf`] run 16 or 8 lanes at a time instead of 4.
//!
//! Three ways a kernel silently stays narrow inside [`widest`] (each several times slower;
//! docs/performance.md has the measurements):
//! a call the compiler does not inline, such as `Iterator::for_each` over a long `zip` chain
//! (write a `for` loop) or a closure called through a reference (`&mut F`: pass `Copy` closures
//! by value); data reached through references the loop might write (move slices and scalars
//! into the kernel, a `move` closure, or copy them to locals, so they live in registers); and a
//! per-element choice whose sides are costly, which a vectorised loop computes on both sides.
//!
//! **Invariant:** the variants compute the same bits. Rust never contracts a multiply and an add
//! into a fused multiply-add nor reorders float operations on its own, an explicit `mul_add`
//! rounds once in every variant (the baseline calls libm's exact `fmaf`), and every vector
//! instruction used for `+ − × ÷`, comparisons and selects rounds exactly like its scalar form;
//! so a kernel's result does not depend on the vector width. Tests check this by running
//! kernels inside [`with_baseline`] as well (on a one-thread pool where the kernel hands work
//! to rayon, since the choice is per thread).

thread_local! {
    /// Whether [`widest`] runs the baseline variant on this thread ([`with_baseline`]).
    static BASELINE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`widest`] kernel on this thread compiled for the baseline target only:
/// the reference the wide variants are tested against, and the baseline of their speed-up.
pub fn with_baseline<T>(f: impl FnOnce() -> T) -> T {
    with_flag(&BASELINE_ONLY, f)
}

/// Runs `f` with the thread-local `flag` set, restoring its previous value afterwards, also
/// when `f` panics.
pub(crate) fn with_flag<T>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|c| c.replace(true)));
    f()
}

/// The vector units [`widest`] may pick, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// AVX-512 (16 f32 lanes).
    Avx512,
    /// AVX2 with FMA (8 lanes).
    Avx2,
    /// The target's baseline (4 lanes on x86-64).
    Baseline,
}

impl Width {
    /// The unit's name, as tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Width::Avx512 => "AVX-512",
            Width::Avx2 => "AVX2 + FMA",
            Width::Baseline => "baseline SIMD",
        }
    }
}

/// The variant [`widest`] runs on this thread and CPU.
pub fn width() -> Width {
    if BASELINE_ONLY.with(std::cell::Cell::get) {
        return Width::Baseline;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Width::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Width::Avx2;
        }
    }
    Width::Baseline
}

/// Runs `kernel` inside a function compiled for the widest vector unit the CPU has ([`width`]).
/// Its loops vectorise for that unit only where `kernel` is inlined there, which the compiler
/// does for an `#[inline(always)]` closure (a plain closure is called from three variants and
/// stays compiled for the baseline): call it through [`widest!`](crate::widest!), which writes
/// the attribute.
#[inline(always)]
pub fn widest<R>(kernel: impl FnOnce() -> R) -> R {
    match width() {
        // SAFETY: the CPU has the features the variant is compiled for (checked by `width`).
        #[cfg(target_arch = "x86_64")]
        Width::Avx512 => unsafe { avx512(kernel) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Width::Avx2 => unsafe { avx2(kernel) },
        _ => kernel(),
    }
}

/// `widest!(expr)`: evaluates `expr` compiled for the widest vector unit the CPU has
/// ([`widest`], with the expression in an `#[inline(always)]` closure).
#[macro_export]
macro_rules! widest {
    ($($kernel:tt)*) => {
        $crate::wide::widest(
            #[inline(always)]
            || $($kernel)*,
        )
    };
}

/// The f32 lanes of the widest vector unit [`widest`] compiles for (AVX-512).
pub const LANES: usize = 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn avx512<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_baseline_selects_the_baseline_and_restores() {
        let outer = width();
        assert_eq!(with_baseline(width), Width::Baseline);
        assert_eq!(width(), outer);
    }

    /// Divisions, products, sums and selects give the same bits in every variant.
    #[test]
    fn variants_agree_bit_for_bit() {
        let xs: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f32 * 0.37 - 150.0)
            .collect();
        let kernel = |xs: &[f32]| -> Vec<u32> {
            xs.iter()
                .map(|x| {
                    let y = (1.0 / (x / 3.7 * 1.3 + 0.5)) * 2.9;
                    (if y < 0.1 { x - y } else { y }).to_bits()
                })
                .collect()
        };
        assert_eq!(widest!(kernel(&xs)), with_baseline(|| widest!(kernel(&xs))));
    }
}
