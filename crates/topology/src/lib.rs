//! Topology evolution: which weights exist.
//!
//! A [`Topology`] decides masks over weight tensors: once at initialisation and, when it is
//! [`due`](Topology::due), after an optimiser step (pruning, regrowth). Decisions are made on host
//! copies of the weights ([`HostWeight`]); [`DeviceMasks`] carries them to the device, zeroes the
//! gradients of masked weights before the optimiser step and re-applies the masks after it, so a
//! masked weight stays exactly `0.0` whatever the optimiser does.
//!
//! Members (one file each): [`gmp`] (gradual magnitude pruning), [`static_mask`] (random mask at
//! init, uniform or ERK densities), [`set`] and [`rigl`] (dynamic sparse training: drop by
//! magnitude, regrow at random or by gradient), [`semi_prune`] (latent masks walked to a target
//! by threshold adaptation, SPEC §1.2). Helpers: [`density`] (ERK allocation),
//! [`select`] (exact top-k masks), [`drop_grow`] (the prune-and-regrow engine of SET and RigL).
//! A topology says what masked entries hold ([`MaskedEntries`]): zeroed for good, or latent
//! values that may regrow; [`DeviceMasks`] implements both.

pub mod density;
pub mod drop_grow;
pub mod gmp;
mod masks;
mod registry;
pub mod rigl;
pub mod select;
pub mod semi_prune;
pub mod set;
pub mod static_mask;
mod topology;

pub use masks::DeviceMasks;
pub use registry::registry;
pub use topology::{HostWeight, Mask, MaskedEntries, Topology, TopologyContext};
