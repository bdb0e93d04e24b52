//! The experiment engine of sparselab: experiment specs, the training loop, the results store,
//! tables and figures. `xtask` is a thin command line over it.
//!
//! - [`spec`]: TOML experiments → validated, expanded runs with stable ids ([`run_id`]).
//! - [`resolve`]: plain method data → live methods, the one place this happens.
//! - [`train`]: one run, step by step (see the module docs for the data flow of a step).
//! - [`store`]: `results/<ablation>/<run-id>/`, atomic writes, resume.
//! - [`figure`], [`table`]: paper-style figures (SVG + PNG) and Markdown/CSV tables;
//!   [`sphere_report`]: measured vs predicted Hoyer sparsity of Lp-sphere layers;
//!   [`similarity`]: mean inter-layer CKA per stage after every epoch.
//! - [`ablate`]: all of it for one named ablation ([`jobs`]: several runs at once); [`bench`]:
//!   throughput benchmarks, paired with PyTorch when it is installed.

pub mod ablate;
pub mod aggregate;
pub mod bench;
pub mod device;
pub mod env;
pub mod figure;
pub mod float_mode;
pub mod heap;
pub mod jobs;
pub mod progress;
pub mod record;
pub mod reference;
pub mod resolve;
pub mod run_id;
pub mod schedule;
pub mod similarity;
pub mod spec;
pub mod sphere_report;
pub mod store;
pub mod table;
pub mod train;

pub use ablate::{Options, ablate, plot};
pub use device::DeviceChoice;
