//! Training-time augmentation: random crops and flips, drawn per image and epoch.

use serde::Serialize;
use sparselab_core::rng::{ChaCha8Rng, Rng};

/// Training-time augmentation (per image, per epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Augment {
    /// Random crop of the original size from the image zero-padded by this many pixels on every
    /// side (0: no crop). Padding happens after normalisation, so it pads with the mean colour.
    pub crop_padding: usize,
    /// Random horizontal flip with probability ½.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        crop_padding: 0,
        flip: false,
    };

    fn is_none(self) -> bool {
        self == Self::NONE
    }

    /// Augments one image `[C, H, W]` in place.
    pub fn apply(self, image: &mut [f32], shape: [usize; 3], rng: &mut ChaCha8Rng) {
        if self.is_none() {
            return;
        }
        let [c, h, w] = shape;
        let p = self.crop_padding as i64;
        let (dy, dx) = if p > 0 {
            (rng.random_range(-p..=p), rng.random_range(-p..=p))
        } else {
            (0, 0)
        };
        let flip = self.flip && rng.random_bool(0.5);
        let source = image.to_vec();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x } as i64 + dx;
                    let sy = y as i64 + dy;
                    let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                    image[(ch * h + y) * w + x] = if inside {
                        source[(ch * h + sy as usize) * w + sx as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}
