//! Optimisers of sparselab, each a `burn::optim::Optimizer` so it also works in any burn loop.
//!
//! One optimiser per file, laid out like burn's own `burn-optim`: a config struct (plain data,
//! `serde`), a state type, the `Optimizer` impl, and tests against closed forms at the bottom.
//! Proximal optimisers hold an optional [`Regularizer`]; [`OptimizerFactory::build`] wires them
//! into a `ModuleOptimizer` with burn parameter groups, so parameters a regularizer does not act
//! on (biases, norm parameters, anything its `applies_to` rejects) take the same update without
//! a prox.
//!
//! Members: [`sgd`], [`proxsgd`], [`rda`], [`grda`], [`xrda`], [`rmda`], [`proxssi`], [`lpsgd`]. Shared
//! pieces: [`prox`] (the regularizer component and its state, composed into every proximal
//! optimiser), [`state_reset`] (resetting chosen state entries, for every optimiser alike) and
//! [`state_values`] (host copies of any optimiser's state).

// burn's `#[derive(RecordState)]` expands to paths relative to the crate root (`crate::RecordState`,
// `crate::StateSink`, ...) and to `burn_pack` and `alloc`; re-exporting them here lets our optimiser
// states use the derive exactly as burn-optim's do.
extern crate alloc;
pub use burn::optim::RecordState;
#[doc(hidden)]
pub use burn::optim::{StateSink, StateSource, join_index, join_path};

mod factory;
pub mod grda;
pub mod lpsgd;
pub mod prox;
pub mod proxsgd;
pub mod proxssi;
pub mod rda;
mod registry;
pub mod rmda;
pub mod sgd;
pub mod state_record;
pub mod state_reset;
pub mod state_values;
#[cfg(test)]
mod testing;
pub mod weight_decay;
pub mod xrda;

pub use factory::{Built, OptimizerFactory, SparseOptimizer};
pub use registry::registry;
pub use sparselab_regularizers::Regularizer;
pub use state_reset::StateResets;
