//! The IDX format (MNIST, Fashion-MNIST): a 4-byte magic `0x00 0x00 <type> <ndims>`, `ndims`
//! big-endian `u32` dimensions, then the data. Only unsigned bytes (`type = 0x08`) are used by
//! these datasets. Files may be gzip-compressed (detected from the gzip magic, not the name).

use crate::error::DataError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<u8>,
}

/// Reads `path` entirely, decompressing gzip if the file starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Corrupt {
                path: path.to_path_buf(),
                format: "gzip",
                reason: e.to_string(),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes (`path` is only used in error messages).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Idx, DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.to_path_buf(),
        format: "IDX",
        reason,
    };
    if bytes.len() < 4 {
        return Err(corrupt(format!(
            "{} bytes, too short for the 4-byte header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(corrupt(format!(
            "bad magic {:02x} {:02x} (expected 00 00)",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(corrupt(format!(
            "element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            bytes[2]
        )));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        return Err(corrupt("zero dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(corrupt(format!(
            "truncated header: {ndims} dimensions need {header} bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| corrupt(format!("dimensions {dims:?} overflow")))?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(corrupt(format!(
            "dimensions {dims:?} need {expected} data bytes, file has {found}{}",
            if found < expected {
                " (truncated)"
            } else {
                " (trailing bytes)"
            }
        )));
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file (raw or gzip).
pub fn read(path: &Path) -> Result<Idx, DataError> {
    parse(&read_maybe_gz(path)?, path)
}

/// Encodes `idx` (used by tests and tools that write small IDX files).
pub fn encode(idx: &Idx) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, idx.dims.len() as u8];
    for &d in &idx.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&idx.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn sample() -> Idx {
        Idx {
            dims: vec![2, 2, 3],
            data: (0..12).collect(),
        }
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let dir = std::env::temp_dir().join(format!("sparselab-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("a-idx3-ubyte");
        std::fs::write(&raw, encode(&sample())).unwrap();
        assert_eq!(read(&raw).unwrap(), sample());
        let gz = dir.join("b-idx3-ubyte.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&encode(&sample())).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read(&gz).unwrap(), sample());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_and_corrupt_files_are_clear_errors() {
        let p = Path::new("t");
        let full = encode(&sample());
        let msg = |bytes: &[u8]| parse(bytes, p).unwrap_err().to_string();
        assert!(msg(&full[..full.len() - 1]).contains("truncated"));
        assert!(msg(&full[..6]).contains("truncated header"));
        assert!(msg(&full[..2]).contains("too short"));
        let mut bad = full.clone();
        bad[0] = 7;
        assert!(msg(&bad).contains("bad magic"));
        let mut float = full.clone();
        float[2] = 0x0d;
        assert!(msg(&float).contains("not supported"));
        let mut long = full;
        long.push(0);
        assert!(msg(&long).contains("trailing"));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dir = std::env::temp_dir().join(format!("sparselab-idxgz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.gz");
        std::fs::write(&p, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("gzip"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
