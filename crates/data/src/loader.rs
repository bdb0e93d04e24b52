//! Batches as tensors: seeded shuffling per epoch and training-time augmentation.

use crate::augment::Augment;
use crate::dataset::Split;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sparselab_core::rng::{SliceRandom, stream};

/// One batch on the device.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Images `[B, C, H, W]`.
    pub images: Tensor<4>,
    /// Labels `[B]`.
    pub labels: Tensor<1, Int>,
    /// `B`.
    pub len: usize,
}

/// How an epoch walks a split.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// In stored order, no augmentation (evaluation).
    Sequential,
    /// Shuffled and augmented for `epoch` of the run with `seed`.
    Shuffled {
        /// Run seed.
        seed: u64,
        /// Epoch (0-based): every epoch has its own permutation.
        epoch: usize,
        /// Augmentation to apply.
        augment: Augment,
    },
}

/// The batches of one pass over `split` (images of shape `shape`), the last one possibly
/// smaller.
pub fn batches<'a>(
    split: &'a Split,
    shape: [usize; 3],
    batch_size: usize,
    order: Order,
    device: &'a Device,
) -> impl Iterator<Item = Batch> + 'a {
    let dim: usize = shape.iter().product();
    let mut indices: Vec<usize> = (0..split.len()).collect();
    let (augment, mut rng) = match order {
        Order::Sequential => (Augment::NONE, stream(0, "unused")),
        Order::Shuffled {
            seed,
            epoch,
            augment,
        } => {
            indices.shuffle(&mut stream(seed, &format!("shuffle/{epoch}")));
            (augment, stream(seed, &format!("augment/{epoch}")))
        }
    };
    let chunks: Vec<Vec<usize>> = indices
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    chunks.into_iter().map(move |chunk| {
        let b = chunk.len();
        let mut images = Vec::with_capacity(b * dim);
        for &i in &chunk {
            let start = images.len();
            images.extend_from_slice(&split.images[i * dim..(i + 1) * dim]);
            augment.apply(&mut images[start..], shape, &mut rng);
        }
        let labels: Vec<i64> = chunk.iter().map(|&i| i64::from(split.labels[i])).collect();
        Batch {
            images: Tensor::from_data(
                TensorData::new(images, [b, shape[0], shape[1], shape[2]]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [b]), device),
            len: b,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize, dim: usize) -> Split {
        Split {
            images: (0..n * dim).map(|i| (i / dim) as f32).collect(),
            labels: (0..n).map(|i| i as u16).collect(),
        }
    }

    #[test]
    fn shuffled_epoch_covers_every_example_once_with_matching_labels() {
        let device = Device::flex();
        let s = split(10, 4);
        let order = Order::Shuffled {
            seed: 3,
            epoch: 1,
            augment: Augment::NONE,
        };
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for b in batches(&s, [1, 2, 2], 4, order, &device) {
            sizes.push(b.len);
            let px: Vec<f32> = b.images.into_data().try_into_vec_as::<f32>().unwrap();
            let labels: Vec<i64> = b.labels.into_data().try_into_vec_as::<i64>().unwrap();
            for (k, l) in labels.iter().enumerate() {
                assert_eq!(px[k * 4] as i64, *l, "image and label travel together");
                seen.push(*l);
            }
        }
        assert_eq!(sizes, vec![4, 4, 2]);
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<i64>>());
        assert_ne!(seen, (0..10).collect::<Vec<i64>>(), "shuffled");
    }

    #[test]
    fn epochs_have_different_permutations_and_are_reproducible() {
        let device = Device::flex();
        let s = split(32, 1);
        let labels = |epoch| -> Vec<i64> {
            let order = Order::Shuffled {
                seed: 1,
                epoch,
                augment: Augment::NONE,
            };
            batches(&s, [1, 1, 1], 32, order, &device)
                .flat_map(|b| b.labels.into_data().try_into_vec_as::<i64>().unwrap())
                .collect()
        };
        assert_eq!(labels(0), labels(0));
        assert_ne!(labels(0), labels(1));
    }

    #[test]
    fn flip_and_crop_move_pixels() {
        let mut rng = stream(0, "t");
        // 1×2×3 image; flip only: every draw is the image or its mirror.
        let original = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let flip = Augment {
            crop_padding: 0,
            flip: true,
        };
        let mut saw_flip = false;
        for _ in 0..20 {
            let mut img = original.clone();
            flip.apply(&mut img, [1, 2, 3], &mut rng);
            assert!(
                img == original || img == vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0],
                "{img:?}"
            );
            saw_flip |= img != original;
        }
        assert!(saw_flip);
        // Crop only: the result is a shifted window with zero fill; values come from the image.
        let crop = Augment {
            crop_padding: 1,
            flip: false,
        };
        for _ in 0..20 {
            let mut img = original.clone();
            crop.apply(&mut img, [1, 2, 3], &mut rng);
            assert!(img.iter().all(|v| *v == 0.0 || original.contains(v)));
        }
    }
}
