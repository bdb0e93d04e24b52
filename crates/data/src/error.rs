//! Errors of dataset loading: missing files say how to get them, corrupt files say what is wrong.

use std::path::PathBuf;

/// A dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset's files are not where they were looked for.
    #[error("{dataset} not found: {detail}\n  how to get it: {hint}")]
    NotFound {
        /// Dataset name.
        dataset: String,
        /// Where it was looked for.
        detail: String,
        /// How to obtain it or point sparselab at it.
        hint: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is truncated or not in the expected format.
    #[error("{path} is not a valid {format} file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Expected format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The configuration asks for something the data cannot give.
    #[error("{0}")]
    Invalid(String),
}
