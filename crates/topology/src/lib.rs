//! Topology evolution: which weights exist.
//!
//! A [`Topology`] decides masks over weight tensors: once at initialisation and, when it is
//! [`due`](Topology::due), after an optimiser step (pruning, regrowth). Decisions are made on host
//! copies of the weights ([`HostWeight`]); [`DeviceMasks`] carries them to the device, zeroes the
//! gradients of masked weights before the optimiser step and re-applies the masks after it, so a
//! masked weight stays exactly `0.0` whatever the optimiser does.
//!
//! Members (one file each): [`gmp`] (gradual magnitude pruning), [`static_mask`] (random mask at
//! init, uniform or ERK densities). Helpers: [`density`] (ERK allocation), [`select`] (exact
//! top-k masks).

pub mod density;
pub mod gmp;
mod masks;
pub mod select;
pub mod static_mask;
mod topology;

pub use masks::DeviceMasks;
pub use topology::{HostWeight, Mask, Topology, TopologyContext, registry};
