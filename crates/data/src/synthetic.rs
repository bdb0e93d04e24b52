//! Synthetic classification data: each class has a random prototype image (standard normal
//! pixels); a sample is its class prototype plus Gaussian noise of standard deviation `noise`.
//! Prototypes and samples are drawn from a fixed `seed`, so every run sees the same data.
//! Learnable (linearly separable in expectation) but not trivial when `noise` is about 1–3.

use serde::{Deserialize, Serialize};
use sparselab_core::config::check_positive;
use sparselab_core::rng::{Rng, normal, stream};
use sparselab_core::{ConfigError, Validate};

/// Shape and size of the synthetic dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of classes.
    pub classes: usize,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Training examples (before the validation split).
    pub train: usize,
    /// Test examples.
    pub test: usize,
    /// Noise standard deviation.
    pub noise: f64,
    /// Seed of the generator (fixed: the data does not depend on the run seed).
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            classes: 4,
            shape: [1, 8, 8],
            train: 1024,
            test: 256,
            noise: 2.0,
            seed: 0,
        }
    }
}

impl Validate for SyntheticConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.classes < 2 {
            return Err(ConfigError::out_of_range(
                "classes",
                self.classes,
                "classes >= 2",
            ));
        }
        if self.shape.contains(&0) {
            return Err(ConfigError::new(
                "shape",
                format!("{:?}: every dimension must be >= 1", self.shape),
            ));
        }
        if self.train == 0 || self.test == 0 {
            return Err(ConfigError::new(
                "train",
                "train and test sizes must be >= 1",
            ));
        }
        check_positive("noise", self.noise)
    }
}

/// `(train images, train labels, test images, test labels)`, images flattened `[N, C, H, W]`.
pub fn generate(config: &SyntheticConfig) -> (Vec<f32>, Vec<u16>, Vec<f32>, Vec<u16>) {
    let dim: usize = config.shape.iter().product();
    let mut rng = stream(config.seed, "synthetic");
    let prototypes: Vec<Vec<f32>> = (0..config.classes)
        .map(|_| (0..dim).map(|_| normal(&mut rng)).collect())
        .collect();
    let noise = config.noise as f32;
    let mut draw = |n: usize| {
        let mut images = Vec::with_capacity(n * dim);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % config.classes;
            labels.push(class as u16);
            images.extend(
                prototypes[class]
                    .iter()
                    .map(|p| p + noise * normal(&mut rng)),
            );
        }
        (images, labels)
    };
    let (train_x, train_y) = draw(config.train);
    let (test_x, test_y) = draw(config.test);
    (train_x, train_y, test_x, test_y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_shaped() {
        let c = SyntheticConfig::default();
        let a = generate(&c);
        assert_eq!(a, generate(&c));
        assert_eq!(a.0.len(), c.train * 64);
        assert_eq!(a.1.iter().filter(|&&l| l == 0).count(), c.train / 4);
        let other = generate(&SyntheticConfig { seed: 1, ..c });
        assert_ne!(a.0, other.0);
    }
}

/// A group-sparse multinomial logistic problem: inputs `x ~ N(0, I_d)` (shape `[1, 1, d]`),
/// labels drawn from `softmax(x·W*)` where only `relevant` of the `d` rows of `W*` (the input
/// groups of the first layer) are non-zero, with entries `N(0, signal²)`. The relevant features
/// are spread evenly (`i·⌊d/relevant⌋`). Used to test structure identification (SPEC.md §1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSparseConfig {
    /// Input features `d`.
    pub features: usize,
    /// Features with a non-zero row in `W*`.
    pub relevant: usize,
    /// Classes.
    pub classes: usize,
    /// Training examples (before the validation split).
    pub train: usize,
    /// Test examples.
    pub test: usize,
    /// Standard deviation of the non-zero entries of `W*`.
    pub signal: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for GroupSparseConfig {
    fn default() -> Self {
        Self {
            features: 40,
            relevant: 5,
            classes: 4,
            train: 2000,
            test: 1000,
            signal: 2.0,
            seed: 0,
        }
    }
}

impl Validate for GroupSparseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.relevant == 0 || self.relevant > self.features {
            return Err(ConfigError::out_of_range(
                "relevant",
                self.relevant,
                "1 <= relevant <= features",
            ));
        }
        if self.classes < 2 {
            return Err(ConfigError::out_of_range(
                "classes",
                self.classes,
                "classes >= 2",
            ));
        }
        if self.train == 0 || self.test == 0 {
            return Err(ConfigError::new(
                "train",
                "train and test sizes must be >= 1",
            ));
        }
        check_positive("signal", self.signal)
    }
}

/// Which input features are relevant.
pub fn relevant_features(config: &GroupSparseConfig) -> Vec<bool> {
    let stride = config.features / config.relevant;
    (0..config.features)
        .map(|j| j % stride == 0 && j / stride < config.relevant)
        .collect()
}

/// `(train x, train y, test x, test y)` of the group-sparse problem.
pub fn generate_group_sparse(
    config: &GroupSparseConfig,
) -> (Vec<f32>, Vec<u16>, Vec<f32>, Vec<u16>) {
    let mut rng = stream(config.seed, "group-sparse");
    let relevant = relevant_features(config);
    let w: Vec<Vec<f64>> = relevant
        .iter()
        .map(|&r| {
            (0..config.classes)
                .map(|_| {
                    if r {
                        config.signal * f64::from(normal(&mut rng))
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let mut draw = |n: usize| {
        let mut xs = Vec::with_capacity(n * config.features);
        let mut ys = Vec::with_capacity(n);
        for _ in 0..n {
            let x: Vec<f32> = (0..config.features).map(|_| normal(&mut rng)).collect();
            let logits: Vec<f64> = (0..config.classes)
                .map(|c| {
                    x.iter()
                        .zip(&w)
                        .map(|(xi, row)| f64::from(*xi) * row[c])
                        .sum()
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
            let mut label = config.classes - 1;
            for (c, wgt) in weights.iter().enumerate() {
                if u < *wgt {
                    label = c;
                    break;
                }
                u -= wgt;
            }
            xs.extend(x);
            ys.push(label as u16);
        }
        (xs, ys)
    };
    let (tx, ty) = draw(config.train);
    let (vx, vy) = draw(config.test);
    (tx, ty, vx, vy)
}

#[cfg(test)]
mod group_sparse_tests {
    use super::*;

    #[test]
    fn relevant_features_are_spread_and_counted() {
        let c = GroupSparseConfig {
            features: 10,
            relevant: 3,
            ..GroupSparseConfig::default()
        };
        let r = relevant_features(&c);
        assert_eq!(r.iter().filter(|v| **v).count(), 3);
        assert_eq!((r[0], r[3], r[6], r[9]), (true, true, true, false));
    }

    #[test]
    fn labels_depend_only_on_relevant_features_and_are_learnable() {
        let c = GroupSparseConfig {
            train: 4000,
            ..GroupSparseConfig::default()
        };
        let (x, y, _, _) = generate_group_sparse(&c);
        assert_eq!(x.len(), 4000 * 40);
        // Every class occurs, and labels are not constant.
        for class in 0..4u16 {
            assert!(
                y.iter().filter(|l| **l == class).count() > 200,
                "class {class}"
            );
        }
        assert_eq!(generate_group_sparse(&c).1, y, "deterministic");
    }
}
