//! sparselab: train sparse neural networks with the methods of SPEC.md and compare them on
//! equal terms. This facade re-exports the workspace's crates; see ARCHITECTURE.md for the map.

pub use sparselab_core as core;
pub use sparselab_data as data;
pub use sparselab_inference as inference;
pub use sparselab_losses as losses;
pub use sparselab_metrics as metrics;
pub use sparselab_models as models;
pub use sparselab_optimizers as optimizers;
pub use sparselab_regularizers as regularizers;
pub use sparselab_runner as runner;
pub use sparselab_topology as topology;
