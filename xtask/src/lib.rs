//! What `cargo xtask` sets up for its process before any command runs (its own library, so a
//! test binary can check it alone: [`heap`]'s effect is process-wide).

pub mod heap;
