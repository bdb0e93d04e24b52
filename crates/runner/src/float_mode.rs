//! The floating-point mode of the compute threads: subnormal results flush to zero and subnormal
//! inputs count as zero (x86's FTZ and DAZ bits of MXCSR; AArch64's FZ bit of FPCR).
//!
//! Why: once a weight is pruned its gradient is 0 and its momentum decays geometrically,
//! `m ← 0.9·m`, into the subnormal range, where round-to-nearest keeps it for ever
//! (`0.9 × 2⁻¹⁴⁹` rounds back to `2⁻¹⁴⁹`); second-moment averages of tiny gradients (ProxSSI's
//! Adam step) and the tails of a softmax underflow the same way. Intel cores take a microcode
//! assist on every arithmetic operation with a subnormal operand or result, which makes such
//! steps several times slower; AMD cores mostly do not. Flushing costs nothing on either, and
//! what it changes is below `f32::MIN_POSITIVE` (1.2e-38), far under the rounding of any weight
//! or activation. TensorFlow sets the same bits on its CPU compute threads; PyTorch offers them
//! as `torch.set_flush_denormal`. A run records the mode in `env.json` (`flush_subnormals`).
//!
//! The mode is per thread, so it is set where threads start: every compute pool of
//! [`crate::jobs`] sets it in its threads' start handler, and training runs on those threads.
//! Rust and LLVM assume the default mode when they fold constants, so a subnormal computed at
//! compile time is not flushed; sparselab's results never depend on one (they are 1e-38 and
//! below, and a flushed value is what a run computes at run time on every CPU).
//!
//! On other architectures the functions do nothing and [`flushes_subnormals`] reports `false`.

/// Whether this architecture has the mode (elsewhere the functions below do nothing).
pub const AVAILABLE: bool = arch::FLUSH != 0;

/// Sets flush-to-zero and denormals-are-zero on the calling thread.
pub fn flush_subnormals() {
    arch::write(arch::read() | arch::FLUSH);
}

/// Whether the calling thread flushes subnormals (both bits set).
pub fn flushes_subnormals() -> bool {
    AVAILABLE && arch::read() & arch::FLUSH == arch::FLUSH
}

#[cfg(target_arch = "x86_64")]
mod arch {
    use std::arch::asm;

    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6); every x86-64 CPU has both.
    pub const FLUSH: u32 = 1 << 15 | 1 << 6;

    pub fn read() -> u32 {
        let mut csr = 0u32;
        // SAFETY: `stmxcsr` stores the 4-byte control register at a valid, aligned address.
        unsafe {
            asm!("stmxcsr [{}]", in(reg) &raw mut csr, options(nostack, preserves_flags));
        }
        csr
    }

    pub fn write(csr: u32) {
        // SAFETY: `ldmxcsr` loads the control register from a valid address; `csr` is the current
        // value with only the flush bits added, so no reserved bit is set.
        unsafe {
            asm!("ldmxcsr [{}]", in(reg) &raw const csr, options(nostack, preserves_flags, readonly));
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use std::arch::asm;

    /// FPCR's flush-to-zero (bit 24): subnormal inputs and results of single and double
    /// precision operations are zero.
    pub const FLUSH: u64 = 1 << 24;

    pub fn read() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe {
            asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
        fpcr
    }

    pub fn write(fpcr: u64) {
        // SAFETY: the current FPCR with only FZ added.
        unsafe {
            asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    pub const FLUSH: u32 = 0;

    pub fn read() -> u32 {
        0
    }

    pub fn write(_: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// The smallest positive subnormal f32.
    const TINY: f32 = f32::from_bits(1);

    /// What a thread computes from subnormal results and operands.
    fn subnormal_arithmetic() -> [f32; 3] {
        [
            // A result below the normal range: 2⁻¹²⁶ × 0.5.
            black_box(f32::MIN_POSITIVE) * black_box(0.5),
            // A subnormal operand.
            black_box(TINY) + black_box(0.0),
            // The decay of a pruned weight's momentum, which round-to-nearest keeps at 2⁻¹⁴⁹.
            black_box(TINY) * black_box(0.9),
        ]
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn a_flushing_thread_computes_no_subnormal() {
        std::thread::spawn(|| {
            assert!(
                !flushes_subnormals(),
                "a new thread starts in the default mode"
            );
            assert!(subnormal_arithmetic().iter().all(|v| v.is_subnormal()));
            flush_subnormals();
            assert!(flushes_subnormals());
            assert_eq!(subnormal_arithmetic(), [0.0; 3]);
            // Normal arithmetic is untouched.
            assert_eq!(
                black_box(f32::MIN_POSITIVE) * black_box(2.0),
                2.0 * f32::MIN_POSITIVE
            );
        })
        .join()
        .expect("the probe thread");
    }
}
