//! Shared vocabulary of sparselab.
//!
//! Every research crate (regularizers, optimizers, topology, metrics, models) speaks in the
//! types defined here:
//!
//! - [`param`]: what a model's parameters are (weight of a linear or conv layer, bias, norm
//!   parameter; which layer is the classifier), so methods know what they act on.
//! - [`weight`]: the canonical rank-4 view of a weight tensor that lets rank-agnostic code
//!   (prox operators, masks) find input and output units.
//! - [`config`]: hyperparameters as plain data, with validation errors that name the key and
//!   the allowed values.
//! - [`registry`]: name → constructor tables, so adding a method is one file plus one line.
//! - [`lane`]: an elementwise update written once against [`Lane`] and run by
//!   [`elementwise!`]: one pass in place on the CPU backend, tensor ops elsewhere, the same bits.
//!   This is all a method author needs of the speed layer.
//! - [`speed`]: the speed layer behind it, which no method author needs to open: [`fused`]
//!   (the in-place passes), [`units`] (per-unit sums and maxima in the CPU backend's order),
//!   [`powf`] (`x^e` for a slice, vectorised), [`wide`] (kernels compiled for the widest vector
//!   unit the CPU has).
//! - [`rng`]: the seeded random generator every crate uses for reproducible runs.

pub mod config;
pub mod lane;
pub mod param;
pub mod registry;
pub mod rng;
pub mod speed;
pub mod weight;

pub use speed::{fused, powf, units, wide};

pub use config::{ConfigError, Validate};
pub use lane::Lane;
pub use param::{ParamInfo, ParamRole, ParamTable, WeightKind};
pub use registry::{Entry, FromConfig, Registry, Resolved};
pub use units::Units;
pub use weight::{Layout, Weight};
