//! Working buffers the convolution kernels reuse from call to call.
//!
//! LeNet-5's largest working matrix (the first layer's weight-gradient columns) is 10 MB; a fresh
//! one each step costs the allocator a new mapping and the kernel its zeroed pages, and zeroing
//! it was wasted work because every value is then written. A kernel instead borrows its thread's
//! buffer for the call.

use std::cell::Cell;
use std::thread::LocalKey;

/// One kind of working buffer (one per thread).
pub(super) type Slot = LocalKey<Cell<Vec<f32>>>;

thread_local! {
    /// The channel-last input of `im2col`.
    pub(super) static INPUT: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The flattened weight of `im2col`.
    pub(super) static WEIGHT: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// The column matrices of `im2col` and `transpose`.
    pub(super) static COLUMNS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on `len` values of this thread's buffer `slot`, **whose contents are unspecified**:
/// `f` must write every value before reading it. A nested call on the same slot (a rayon task
/// run while this thread waits) gets a buffer of its own.
pub(super) fn with<R>(slot: &'static Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = slot.take();
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = f(&mut buffer[..len]);
    slot.set(buffer);
    result
}
