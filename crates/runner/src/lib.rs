//! The experiment engine of sparselab: experiment files, the training loop, the results store,
//! tables and figures. `xtask` is a thin command line over it.
//!
//! - [`spec`]: TOML experiment files → an [`experiment::Ablation`]: validated, expanded runs
//!   with stable ids ([`run_id`]).
//! - [`resolve`]: plain method data → live methods, the one place this happens and where every
//!   rule between components lives.
//! - [`trainee`]: a run's live model and methods and one training step (the module docs give
//!   its data flow); [`train`]: a run's epochs, evaluation and metrics, on the compute pools of
//!   [`jobs`] ([`float_mode`]: their floating-point mode); [`sphere_report`]: the end-of-run
//!   analysis of optimisers that declare Lp spheres.
//! - [`store`]: `results/<ablation>/<run-id>/`, atomic writes, resume; [`lease`]: which of the
//!   processes sharing a store trains a run; [`shard`]: a deterministic part of an ablation's
//!   runs (SLURM array tasks).
//! - [`figure`], [`table`]: paper-style figures (SVG + PNG) and Markdown/CSV tables;
//!   [`similarity`]: mean inter-layer CKA per stage after every epoch.
//! - [`ablate`]: all of it for one named ablation ([`jobs`]: several runs at once).

pub mod ablate;
pub mod aggregate;
pub mod agreement;
pub mod checkpoint;
pub mod claims;
pub mod device;
pub mod env;
pub mod experiment;
pub mod export;
pub mod figure;
pub mod float_mode;
pub mod inference_speed;
pub mod interrupt;
pub mod jobs;
pub mod lease;
pub mod progress;
pub mod record;
pub mod report;
pub mod resolve;
pub mod run_id;
pub mod schedule;
pub mod search;
pub mod shard;
pub mod similarity;
pub mod spec;
pub mod sphere_report;
pub mod store;
pub mod table;
pub mod train;
pub mod trainee;
pub mod wall_time;

pub use ablate::{Options, ablate, plot};
pub use device::DeviceChoice;
