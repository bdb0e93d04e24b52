//! The process's allocator policy: keep freed memory for reuse (glibc on Linux).
//!
//! A training step frees and re-allocates the same activations every step. glibc serves blocks
//! above its mmap threshold (128 KiB at first) with fresh mappings and hands back free memory at
//! the top of a heap above its trim threshold, so a step can re-fault its activations' pages each
//! time (glibc raises its thresholds by itself as large blocks are freed, so how often depends on
//! what the process did before). A long run reaches high thresholds by itself; a short process,
//! such as `cargo xtask bench` training on a batch it made itself, does not and re-faults its
//! activations' pages every step (docs/performance.md has the measurements). Fixing the
//! thresholds at start gives every command the state a run reaches by itself.

/// Sets glibc's mmap threshold to its largest value (32 MiB: blocks below it come from the heap
/// and are reused) and the trim threshold to 256 MiB (free memory at a heap's top is kept up to
/// that), for the whole process. Call once, first thing in `main`, before other threads exist.
/// Elsewhere than Linux with glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters, and is called before any other
    // thread allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
