//! Datasets of sparselab (SPEC.md §4).
//!
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST (raw or gzip).
//! - [`cifar`]: the CIFAR-10/100 binary format.
//! - [`synthetic`]: generated class-prototype images, for tests and smoke runs.
//! - [`dataset`]: loading by name, the validation split carved from the training set (model
//!   selection never looks at the test set), subsets, per-channel normalisation.
//! - [`loader`]: seeded shuffling and batching to tensors; [`augment`]: training-time
//!   augmentation (random crop with padding, horizontal flip).

pub mod augment;
pub mod cifar;
pub mod dataset;
mod error;
pub mod idx;
pub mod loader;
pub mod synthetic;

pub use augment::Augment;
pub use dataset::{DataConfig, Dataset, Split, load};
pub use error::DataError;
pub use loader::{Batch, Order, batches};
