//! `heap::keep_freed_memory`, in a test binary of its own: glibc's counters are process-wide, so
//! nothing else may allocate meanwhile.

/// With the thresholds fixed, a 4 MiB block comes from the heap, not from a mapping of its own
/// (glibc's default threshold, 128 KiB in a process that has freed no large block, would map it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_large_block_comes_from_the_heap() {
    // SAFETY: `mallinfo2` only reads the allocator's statistics.
    let mapped = || unsafe { libc::mallinfo2() }.hblks;
    xtask::heap::keep_freed_memory();
    let before = mapped();
    let block = std::hint::black_box(vec![1u8; 4 << 20]);
    assert_eq!(mapped(), before, "a 4 MiB block was mapped on its own");
    drop(block);
}
