//! The CIFAR binary format: records of label byte(s) followed by 3072 pixel bytes (3×32×32,
//! channel-major). CIFAR-10 has one label byte (`data_batch_1..5.bin`, `test_batch.bin`);
//! CIFAR-100 has a coarse and a fine label byte (`train.bin`, `test.bin`); the fine label is
//! used.

use crate::error::DataError;
use crate::idx::read_maybe_gz;
use std::path::Path;

/// Pixels per CIFAR image.
pub const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR variant a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 10 classes, one label byte.
    Cifar10,
    /// 100 fine classes, two label bytes (coarse, fine).
    Cifar100,
}

impl Variant {
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }
}

/// Parses CIFAR records: `(pixels, labels)` with pixels `[N, 3, 32, 32]` row-major.
pub fn parse(
    bytes: &[u8],
    variant: Variant,
    path: &Path,
) -> Result<(Vec<u8>, Vec<u16>), DataError> {
    let record = variant.label_bytes() + PIXELS;
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        format: "CIFAR binary",
        reason,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(corrupt(format!(
            "{} bytes is not a whole number of {record}-byte records (truncated?)",
            bytes.len()
        )));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = r[variant.label_bytes() - 1];
        if usize::from(label) >= variant.classes() {
            return Err(corrupt(format!(
                "record {i} has label {label}, expected < {}",
                variant.classes()
            )));
        }
        labels.push(u16::from(label));
        pixels.extend_from_slice(&r[variant.label_bytes()..]);
    }
    Ok((pixels, labels))
}

/// Reads one CIFAR binary file.
pub fn read(path: &Path, variant: Variant) -> Result<(Vec<u8>, Vec<u16>), DataError> {
    parse(&read_maybe_gz(path)?, variant, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(labels: &[&[u8]]) -> Vec<u8> {
        labels
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                let mut r = l.to_vec();
                r.extend(std::iter::repeat_n(i as u8, PIXELS));
                r
            })
            .collect()
    }

    #[test]
    fn cifar10_and_cifar100_records() {
        let p = Path::new("t.bin");
        let (px, labels) = parse(&records(&[&[3], &[9]]), Variant::Cifar10, p).unwrap();
        assert_eq!(labels, vec![3, 9]);
        assert_eq!(px.len(), 2 * PIXELS);
        assert_eq!((px[0], px[PIXELS]), (0, 1));
        let (_, fine) = parse(&records(&[&[1, 42], &[0, 99]]), Variant::Cifar100, p).unwrap();
        assert_eq!(fine, vec![42, 99]);
    }

    #[test]
    fn truncated_and_bad_labels_are_errors() {
        let p = Path::new("t.bin");
        let bytes = records(&[&[3], &[9]]);
        let err = parse(&bytes[..bytes.len() - 5], Variant::Cifar10, p).unwrap_err();
        assert!(err.to_string().contains("truncated"));
        let err = parse(&records(&[&[10]]), Variant::Cifar10, p).unwrap_err();
        assert!(err.to_string().contains("label 10"));
    }
}
