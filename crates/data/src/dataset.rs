//! Loading a dataset by name: files, validation split, subsets, normalisation.

use crate::augment::Augment;
use crate::cifar::{self, Variant};
use crate::error::DataError;
use crate::idx;
use crate::synthetic::{self, GroupSparseConfig, SyntheticConfig};
use serde::{Deserialize, Serialize};
use sparselab_core::rng::{SliceRandom, stream};
use sparselab_core::{ConfigError, Validate};
use std::path::{Path, PathBuf};

/// Environment variable naming a directory of datasets (or one dataset's directory).
pub const DATA_DIR_ENV: &str = "SPARSELAB_DATA_DIR";

/// Dataset names `load` understands.
pub const NAMES: [&str; 6] = [
    "fashion-mnist",
    "mnist",
    "cifar10",
    "cifar100",
    "synthetic",
    "group-sparse",
];

/// Which data a run trains on and how it is split.
///
/// Where the files are is not part of the config (it does not change the experiment): see
/// [`load`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset name (one of [`NAMES`]).
    pub name: String,
    /// Training examples carved out as the validation split (model selection uses it, never
    /// the test set).
    pub validation: usize,
    /// Seed of the validation split and test subset (fixed, so all runs share the split).
    pub split_seed: u64,
    /// Use only the first `k` training examples (after the split); `None`: all.
    pub train_subset: Option<usize>,
    /// Use a random `k`-subset of the test set; `None`: all.
    pub test_subset: Option<usize>,
    /// Random crop (padding 4) and horizontal flip; `None`: the dataset's default (on for CIFAR,
    /// off for MNIST-like and synthetic data).
    pub augment: Option<bool>,
    /// Shape and size of the `synthetic` dataset (ignored by the others).
    pub synthetic: SyntheticConfig,
    /// The `group-sparse` logistic problem (ignored by the others).
    pub group_sparse: GroupSparseConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            name: "fashion-mnist".into(),
            validation: 5000,
            split_seed: 0,
            train_subset: None,
            test_subset: None,
            augment: None,
            synthetic: SyntheticConfig::default(),
            group_sparse: GroupSparseConfig::default(),
        }
    }
}

impl Validate for DataConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !NAMES.contains(&self.name.as_str()) {
            return Err(ConfigError::new(
                "name",
                format!(
                    "unknown dataset `{}` (allowed: {})",
                    self.name,
                    NAMES.join(", ")
                ),
            ));
        }
        if self.train_subset == Some(0) || self.test_subset == Some(0) {
            return Err(ConfigError::new(
                "train_subset",
                "subsets must hold at least 1 example",
            ));
        }
        self.synthetic
            .validate()
            .map_err(|e| e.under("synthetic"))?;
        self.group_sparse
            .validate()
            .map_err(|e| e.under("group_sparse"))
    }
}

/// One split: images `[N, C, H, W]` (normalised) and labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// Normalised pixels, flattened.
    pub images: Vec<f32>,
    /// Class labels.
    pub labels: Vec<u16>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn select(&self, indices: &[usize], dim: usize) -> Split {
        Split {
            images: indices
                .iter()
                .flat_map(|&i| self.images[i * dim..(i + 1) * dim].iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A loaded dataset.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Dataset name.
    pub name: String,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Training split (validation examples removed).
    pub train: Split,
    /// Validation split (carved from the training set).
    pub val: Split,
    /// Test split.
    pub test: Split,
    /// Training-time augmentation.
    pub augment: Augment,
    /// Per-channel `(mean, std)` of the training split, used to normalise every split.
    pub normalization: Vec<(f32, f32)>,
    /// For generated data with a known sparse structure: which input features matter.
    pub relevant_features: Option<Vec<bool>>,
}

impl Dataset {
    /// `C·H·W`.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Raw data as read from disk, before splitting and normalisation.
struct Raw {
    shape: [usize; 3],
    classes: usize,
    train: Split,
    test: Split,
    augment_default: bool,
    relevant_features: Option<Vec<bool>>,
}

fn bytes_to_unit(pixels: Vec<u8>) -> Vec<f32> {
    pixels.into_iter().map(|p| f32::from(p) / 255.0).collect()
}

/// Where to look for dataset `name`: `explicit` if given, else `$SPARSELAB_DATA_DIR/<name>` (or
/// `$SPARSELAB_DATA_DIR` itself), else the default location.
fn locate(name: &str, explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(root) = std::env::var_os(DATA_DIR_ENV) {
        let root = PathBuf::from(root);
        let sub = root.join(name);
        return if sub.is_dir() { sub } else { root };
    }
    match name {
        "fashion-mnist" => "/usr/share/datasets/fashion-mnist".into(),
        "mnist" => "/usr/share/datasets/mnist".into(),
        "cifar10" => "data/cifar-10-batches-bin".into(),
        _ => "data/cifar-100-binary".into(),
    }
}

fn hint(name: &str) -> String {
    let install = match name {
        "fashion-mnist" => "install it with `sudo apt-get install dataset-fashion-mnist`, or ",
        "mnist" => "download the four IDX files from http://yann.lecun.com/exdb/mnist/ and ",
        "cifar10" => {
            "download and unpack https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and "
        }
        _ => "download and unpack https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz and ",
    };
    format!("{install}pass --data-dir DIR or set {DATA_DIR_ENV}=DIR")
}

/// The first of `candidates` that exists in `dir`.
fn find(dir: &Path, name: &str, candidates: &[String]) -> Result<PathBuf, DataError> {
    candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::NotFound {
            dataset: name.to_string(),
            detail: format!("none of {} in {}", candidates.join(", "), dir.display()),
            hint: hint(name),
        })
}

fn load_idx(name: &str, dir: &Path) -> Result<Raw, DataError> {
    // `train-images-idx3-ubyte` (Fashion-MNIST, Debian) or `train-images.idx3-ubyte` (some MNIST
    // mirrors), raw or gzip.
    let file = |stem: &str, kind: &str| {
        let dashed = format!("{stem}-{kind}-ubyte");
        let dotted = format!("{stem}.{kind}-ubyte");
        find(
            dir,
            name,
            &[
                dashed.clone(),
                format!("{dashed}.gz"),
                dotted.clone(),
                format!("{dotted}.gz"),
            ],
        )
    };
    let read_pair = |prefix: &str| -> Result<(idx::Idx, idx::Idx), DataError> {
        let images = idx::read(&file(&format!("{prefix}-images"), "idx3")?)?;
        let labels = idx::read(&file(&format!("{prefix}-labels"), "idx1")?)?;
        if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
            return Err(DataError::Invalid(format!(
                "{name}: {prefix} images {:?} and labels {:?} do not match",
                images.dims, labels.dims
            )));
        }
        Ok((images, labels))
    };
    let (train_x, train_y) = read_pair("train")?;
    let (test_x, test_y) = read_pair("t10k")?;
    let (h, w) = (train_x.dims[1], train_x.dims[2]);
    if test_x.dims[1..] != train_x.dims[1..] {
        return Err(DataError::Invalid(format!(
            "{name}: train and test image sizes differ"
        )));
    }
    let classes = usize::from(*train_y.data.iter().max().unwrap_or(&0)) + 1;
    let split = |x: idx::Idx, y: idx::Idx| Split {
        images: bytes_to_unit(x.data),
        labels: y.data.into_iter().map(u16::from).collect(),
    };
    Ok(Raw {
        shape: [1, h, w],
        classes: classes.max(10),
        train: split(train_x, train_y),
        test: split(test_x, test_y),
        augment_default: false,
        relevant_features: None,
    })
}

fn load_cifar(name: &str, dir: &Path, variant: Variant) -> Result<Raw, DataError> {
    let (train_files, test_file): (Vec<String>, &str) = match variant {
        Variant::Cifar10 => (
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            "test_batch.bin",
        ),
        Variant::Cifar100 => (vec!["train.bin".into()], "test.bin"),
    };
    let mut train = Split::default();
    for f in &train_files {
        let (px, labels) = cifar::read(&find(dir, name, std::slice::from_ref(f))?, variant)?;
        train.images.extend(bytes_to_unit(px));
        train.labels.extend(labels);
    }
    let (px, labels) = cifar::read(&find(dir, name, &[test_file.to_string()])?, variant)?;
    Ok(Raw {
        shape: [3, 32, 32],
        classes: variant.classes(),
        train,
        test: Split {
            images: bytes_to_unit(px),
            labels,
        },
        augment_default: true,
        relevant_features: None,
    })
}

impl Raw {
    /// Generated data: `(train x, train y, test x, test y)` as the generators return them.
    fn generated(
        shape: [usize; 3],
        classes: usize,
        (tx, ty, vx, vy): (Vec<f32>, Vec<u16>, Vec<f32>, Vec<u16>),
        relevant_features: Option<Vec<bool>>,
    ) -> Self {
        Raw {
            shape,
            classes,
            train: Split {
                images: tx,
                labels: ty,
            },
            test: Split {
                images: vx,
                labels: vy,
            },
            augment_default: false,
            relevant_features,
        }
    }
}

fn load_synthetic(config: &SyntheticConfig) -> Raw {
    Raw::generated(
        config.shape,
        config.classes,
        synthetic::generate(config),
        None,
    )
}

fn load_group_sparse(config: &GroupSparseConfig) -> Raw {
    Raw::generated(
        [1, 1, config.features],
        config.classes,
        synthetic::generate_group_sparse(config),
        Some(synthetic::relevant_features(config)),
    )
}

/// Per-channel mean and standard deviation of `images` (`[N, C, H·W]`).
fn channel_stats(images: &[f32], channels: usize, plane: usize) -> Vec<(f32, f32)> {
    (0..channels)
        .map(|c| {
            let values = images.chunks(channels * plane).flat_map(|img| {
                img[c * plane..(c + 1) * plane]
                    .iter()
                    .map(|v| f64::from(*v))
            });
            let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
            for v in values {
                n += 1.0;
                sum += v;
                sq += v * v;
            }
            let mean = sum / n.max(1.0);
            let std = (sq / n.max(1.0) - mean * mean).max(0.0).sqrt();
            (mean as f32, if std > 1e-12 { std as f32 } else { 1.0 })
        })
        .collect()
}

fn normalize(split: &mut Split, stats: &[(f32, f32)], plane: usize) {
    let channels = stats.len();
    for img in split.images.chunks_mut(channels * plane) {
        for (c, &(mean, std)) in stats.iter().enumerate() {
            for v in &mut img[c * plane..(c + 1) * plane] {
                *v = (*v - mean) / std;
            }
        }
    }
}

/// Loads dataset `config.name` from `dir` (or its default location, see [`DATA_DIR_ENV`]),
/// carves the validation split from the training set, applies subsets, and normalises every
/// split with the training split's per-channel statistics.
pub fn load(config: &DataConfig, dir: Option<&Path>) -> Result<Dataset, DataError> {
    config
        .validate()
        .map_err(|e| DataError::Invalid(e.under("data").to_string()))?;
    let name = config.name.as_str();
    let raw = match name {
        "synthetic" => load_synthetic(&config.synthetic),
        "group-sparse" => load_group_sparse(&config.group_sparse),
        "cifar10" => load_cifar(name, &locate(name, dir), Variant::Cifar10)?,
        "cifar100" => load_cifar(name, &locate(name, dir), Variant::Cifar100)?,
        _ => load_idx(name, &locate(name, dir))?,
    };
    let dim: usize = raw.shape.iter().product();
    let plane = raw.shape[1] * raw.shape[2];
    let n = raw.train.len();
    if config.validation >= n {
        return Err(DataError::Invalid(format!(
            "data.validation = {} leaves no training examples ({name} has {n})",
            config.validation
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut stream(config.split_seed, "validation-split"));
    let (val_idx, train_idx) = order.split_at(config.validation);
    let train_idx = match config.train_subset {
        Some(k) => &train_idx[..k.min(train_idx.len())],
        None => train_idx,
    };
    let mut val = raw.train.select(val_idx, dim);
    let mut train = raw.train.select(train_idx, dim);
    let mut test = match config.test_subset {
        Some(k) if k < raw.test.len() => {
            let mut idx: Vec<usize> = (0..raw.test.len()).collect();
            idx.shuffle(&mut stream(config.split_seed, "test-subset"));
            raw.test.select(&idx[..k], dim)
        }
        _ => raw.test,
    };
    let stats = channel_stats(&train.images, raw.shape[0], plane);
    for split in [&mut train, &mut val, &mut test] {
        normalize(split, &stats, plane);
    }
    let augment = if config.augment.unwrap_or(raw.augment_default) {
        Augment {
            crop_padding: 4,
            flip: true,
        }
    } else {
        Augment::NONE
    };
    Ok(Dataset {
        name: name.to_string(),
        shape: raw.shape,
        classes: raw.classes,
        train,
        val,
        test,
        augment,
        normalization: stats,
        relevant_features: raw.relevant_features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{Idx, encode};

    fn write_fake_mnist(dir: &Path, n_train: usize, n_test: usize) {
        std::fs::create_dir_all(dir).unwrap();
        let images = |n: usize| Idx {
            dims: vec![n, 4, 4],
            data: (0..n * 16).map(|i| (i % 251) as u8).collect(),
        };
        let labels = |n: usize| Idx {
            dims: vec![n],
            data: (0..n).map(|i| (i % 10) as u8).collect(),
        };
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            encode(&images(n_train)),
        )
        .unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            encode(&labels(n_train)),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), encode(&images(n_test))).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), encode(&labels(n_test))).unwrap();
    }

    fn tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("sparselab-data-{tag}-{}", std::process::id()))
    }

    #[test]
    fn idx_dataset_split_subset_and_normalisation() {
        let dir = tmp("split");
        write_fake_mnist(&dir, 50, 20);
        let config = DataConfig {
            name: "mnist".into(),
            validation: 10,
            train_subset: Some(30),
            test_subset: Some(5),
            ..DataConfig::default()
        };
        let d = load(&config, Some(&dir)).unwrap();
        assert_eq!((d.train.len(), d.val.len(), d.test.len()), (30, 10, 5));
        assert_eq!((d.shape, d.classes), ([1, 4, 4], 10));
        // Normalised with the training split's statistics: mean 0, std 1 on train.
        let mean = d.train.images.iter().sum::<f32>() / d.train.images.len() as f32;
        assert!(mean.abs() < 1e-4, "{mean}");
        // The split is fixed by split_seed and disjoint: the 50 examples are all distinct here.
        let again = load(&config, Some(&dir)).unwrap();
        assert_eq!(again.val, d.val);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_dataset_says_how_to_get_it() {
        let err = load(
            &DataConfig::default(),
            Some(Path::new("/nonexistent/fmnist")),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("fashion-mnist not found"), "{msg}");
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
        assert!(msg.contains("--data-dir"), "{msg}");
    }

    #[test]
    fn truncated_file_is_a_clear_error() {
        let dir = tmp("trunc");
        write_fake_mnist(&dir, 20, 5);
        let p = dir.join("train-labels-idx1-ubyte");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let config = DataConfig {
            name: "mnist".into(),
            validation: 2,
            ..DataConfig::default()
        };
        let msg = load(&config, Some(&dir)).unwrap_err().to_string();
        assert!(
            msg.contains("train-labels-idx1-ubyte") && msg.contains("truncated"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validation_larger_than_train_is_rejected() {
        let config = DataConfig {
            name: "synthetic".into(),
            validation: 5000,
            ..DataConfig::default()
        };
        assert!(
            load(&config, None)
                .unwrap_err()
                .to_string()
                .contains("validation")
        );
    }
}
