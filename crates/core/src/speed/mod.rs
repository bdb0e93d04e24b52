//! The speed layer: how an update written against [`crate::Lane`] runs as one pass over memory
//! in place on the CPU backend, at the CPU's widest vector unit, with the bits of its tensor-op
//! form. A method author never needs to open this folder: [`crate::elementwise!`] is the whole
//! interface. Each module states its invariant (the same bits as the tensor ops; the same bits at
//! every vector width and thread count) and tests it.

pub mod fused;
pub mod powf;
pub mod units;
pub mod wide;
