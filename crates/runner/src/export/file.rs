//! A trained network out of sparselab: one file any framework reads, with the dense weights in
//! PyTorch's layout and, for every weight tensor with pruned entries, its CSR form.
//!
//! Layout: every parameter (buffers included) under its sparselab path, in PyTorch's layout:
//! a linear weight is `[out, in]` (burn keeps `[in, out]`), a conv weight `[out, in, kh, kw]`,
//! biases and norms as they are. For a weight tensor `W` with zeros, `<path>.indptr`,
//! `<path>.indices` (both int64) and `<path>.values` (float32) hold the CSR form of
//! `W.reshape(out, -1)`: row `r`'s non-zeros are `values[indptr[r]..indptr[r+1]]` at columns
//! `indices[...]`, so `torch.sparse_csr_tensor(indptr, indices, values, (out, W.numel() // out))`
//! is the layer's matrix. The file's metadata names the format ([`FORMAT`]), the layouts, the run
//! id, its ablation, its configuration (JSON) and its stored test accuracy.
//!
//! Two containers hold the same tensors and metadata: safetensors (what PyTorch users load
//! with the `safetensors` package) and burnpack (burn's format).

use crate::experiment::PlannedRun;
use anyhow::Context;
use sparselab_core::{ParamInfo, ParamTable, WeightKind};
use sparselab_inference::csr::Csr;
use std::collections::HashMap;

/// The format this version writes and reads.
pub const FORMAT: &str = "sparselab-export/1";

/// What the metadata says about the layout.
const LAYOUT: &str = "pytorch: linear weights [out, in], conv weights [out, in, kh, kw]";
/// What the metadata says about the sparse tensors.
const SPARSE: &str = "csr of weight.reshape(out, -1): <name>.indptr, <name>.indices (int64), \
                      <name>.values (float32)";

/// The container of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// safetensors (Hugging Face's format; `safetensors.torch.load_file`).
    Safetensors,
    /// burnpack (burn's record format).
    Burnpack,
}

impl std::str::FromStr for Container {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "safetensors" => Ok(Self::Safetensors),
            "burnpack" => Ok(Self::Burnpack),
            other => Err(format!(
                "unknown export format `{other}` (allowed: safetensors, burnpack)"
            )),
        }
    }
}

impl Container {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Safetensors => "safetensors",
            Self::Burnpack => "bpk",
        }
    }
}

/// One tensor of an export: f32 or i64 values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// float32.
    F32(Vec<f32>),
    /// int64.
    I64(Vec<i64>),
}

impl Values {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// A named tensor of an export.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    /// Its name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub values: Values,
}

/// `values` of `info` (burn's memory order) in PyTorch's layout, with that layout's shape.
pub(crate) fn to_pytorch(info: &ParamInfo, values: &[f32]) -> (Vec<usize>, Vec<f32>) {
    match (info.weight_kind(), info.shape.as_slice()) {
        (Some(WeightKind::Linear), &[d_in, d_out]) => {
            let mut t = vec![0.0; values.len()];
            for i in 0..d_in {
                for o in 0..d_out {
                    t[o * d_in + i] = values[i * d_out + o];
                }
            }
            (vec![d_out, d_in], t)
        }
        _ => (info.shape.clone(), values.to_vec()),
    }
}

/// [`to_pytorch`] undone.
fn from_pytorch(info: &ParamInfo, values: &[f32]) -> Vec<f32> {
    match (info.weight_kind(), info.shape.as_slice()) {
        (Some(WeightKind::Linear), &[d_in, d_out]) => {
            let mut t = vec![0.0; values.len()];
            for i in 0..d_in {
                for o in 0..d_out {
                    t[i * d_out + o] = values[o * d_in + i];
                }
            }
            t
        }
        _ => values.to_vec(),
    }
}

/// The tensors of an export of a model described by `table` with parameter values `values`
/// (table order, burn's memory order).
pub fn tensors(table: &ParamTable, values: &[Vec<f32>]) -> Vec<Named> {
    let mut out = Vec::new();
    for (info, v) in table.iter().zip(values) {
        let (shape, dense) = to_pytorch(info, v);
        if info.is_weight() && dense.contains(&0.0) {
            let csr = Csr::from_dense(&dense, shape[0]);
            let indptr: Vec<i64> = csr.indptr.iter().map(|&p| p as i64).collect();
            let indices: Vec<i64> = csr.indices.iter().map(|&c| i64::from(c)).collect();
            let nz = csr.values;
            let n = (indptr.len(), indices.len(), nz.len());
            out.push(Named {
                name: format!("{}.indptr", info.path),
                shape: vec![n.0],
                values: Values::I64(indptr),
            });
            out.push(Named {
                name: format!("{}.indices", info.path),
                shape: vec![n.1],
                values: Values::I64(indices),
            });
            out.push(Named {
                name: format!("{}.values", info.path),
                shape: vec![n.2],
                values: Values::F32(nz),
            });
        }
        out.push(Named {
            name: info.path.clone(),
            shape,
            values: Values::F32(dense),
        });
    }
    out
}

/// The metadata of an export of `run` of `ablation` whose stored test accuracy is
/// `test_accuracy`.
pub fn metadata(ablation: &str, run: &PlannedRun, test_accuracy: f64) -> HashMap<String, String> {
    HashMap::from([
        ("format".into(), FORMAT.into()),
        ("layout".into(), LAYOUT.into()),
        ("sparse".into(), SPARSE.into()),
        ("run_id".into(), run.id.clone()),
        ("ablation".into(), ablation.into()),
        ("config".into(), run.config.to_json().to_string()),
        ("test_accuracy".into(), format!("{test_accuracy:?}")),
    ])
}

/// The file's bytes in `container`.
pub fn encode(
    container: Container,
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), t.values.bytes()))
        .collect();
    match container {
        Container::Safetensors => {
            let views = tensors
                .iter()
                .zip(&bytes)
                .map(|(t, (name, b))| {
                    let dtype = match t.values {
                        Values::F32(_) => safetensors::Dtype::F32,
                        Values::I64(_) => safetensors::Dtype::I64,
                    };
                    let view = safetensors::tensor::TensorView::new(dtype, t.shape.clone(), b)?;
                    Ok((name.clone(), view))
                })
                .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
            Ok(safetensors::serialize(views, Some(metadata))?)
        }
        Container::Burnpack => {
            let packed = tensors
                .iter()
                .zip(bytes)
                .map(|(t, (name, b))| {
                    let dtype = match t.values {
                        Values::F32(_) => burn_pack::DType::F32,
                        Values::I64(_) => burn_pack::DType::I64,
                    };
                    let bytes = burn_pack::Bytes::from_bytes_vec(b);
                    burn_pack::Tensor::new(name, dtype, t.shape.clone(), None, bytes)
                })
                .collect();
            let mut writer = burn_pack::Writer::new(packed);
            let mut keys: Vec<_> = metadata.iter().collect();
            keys.sort();
            for (k, v) in keys {
                writer = writer.with_metadata(k, v);
            }
            Ok(writer.into_bytes()?.to_vec())
        }
    }
}

/// An export read back: its metadata and dense tensors by name.
#[derive(Debug)]
pub struct Export {
    /// The file's metadata.
    pub metadata: HashMap<String, String>,
    /// Every f32 tensor by name (dense parameters and CSR values).
    pub tensors: HashMap<String, Vec<f32>>,
}

fn not_an_export(why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("not a sparselab export ({why})")
}

/// Reads an export in either container.
///
/// # Errors
/// If the bytes are neither container, or their metadata does not say [`FORMAT`].
pub fn decode(bytes: &[u8]) -> anyhow::Result<Export> {
    let f32s = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    // A safetensors file starts with its header's length (8 bytes), then the header's JSON.
    let (metadata, tensors) = if bytes.get(8) != Some(&b'{') {
        let reader =
            burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes.to_vec()))
                .map_err(not_an_export)?;
        let metadata: HashMap<String, String> = reader
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut tensors = HashMap::new();
        for t in reader.into_tensors().map_err(not_an_export)? {
            let (name, dtype, _, _, b) = t.into_parts().map_err(not_an_export)?;
            if dtype == burn_pack::DType::F32 {
                tensors.insert(name, f32s(&b));
            }
        }
        (metadata, tensors)
    } else {
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(not_an_export)?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(not_an_export)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let tensors = file
            .iter()
            .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
            .map(|(name, v)| (name.to_string(), f32s(v.data())))
            .collect();
        (metadata, tensors)
    };
    let format = metadata.get("format").map_or("none", String::as_str);
    if format != FORMAT {
        return Err(not_an_export(format!(
            "its metadata says format `{format}`, not `{FORMAT}`"
        )));
    }
    Ok(Export { metadata, tensors })
}

impl Export {
    /// The parameter values of a model described by `table` (table order, burn's memory order).
    ///
    /// # Errors
    /// If a parameter is missing or has another number of values.
    pub fn values(&self, table: &ParamTable) -> anyhow::Result<Vec<Vec<f32>>> {
        table
            .iter()
            .map(|info| {
                let v = self
                    .tensors
                    .get(&info.path)
                    .with_context(|| format!("the export has no tensor `{}`", info.path))?;
                anyhow::ensure!(
                    v.len() == info.numel(),
                    "`{}` has {} values, and the model's has {}",
                    info.path,
                    v.len(),
                    info.numel()
                );
                Ok(from_pytorch(info, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linear_weight_goes_to_pytorch_and_back() {
        let info = ParamInfo::weight(WeightKind::Linear, vec![2, 3]);
        let burn = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (shape, torch) = to_pytorch(&info, &burn);
        assert_eq!(shape, [3, 2]);
        assert_eq!(torch, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(from_pytorch(&info, &torch), burn);
    }

    #[test]
    fn both_containers_read_back_and_anything_else_is_refused() {
        let info = ParamInfo::weight(WeightKind::Linear, vec![2, 2]);
        let table = ParamTable::new(vec![info]);
        let values = vec![vec![0.0, 1.5, -2.0, 0.0]];
        let named = tensors(&table, &values);
        assert_eq!(named.len(), 4, "the dense weight and its three CSR arrays");
        let meta = HashMap::from([("format".to_string(), FORMAT.to_string())]);
        for container in [Container::Safetensors, Container::Burnpack] {
            let bytes = encode(container, &named, meta.clone()).unwrap();
            let back = decode(&bytes).unwrap();
            assert_eq!(back.values(&table).unwrap(), values, "{container:?}");
        }
        let foreign = encode(Container::Safetensors, &named, HashMap::new()).unwrap();
        for bad in [&foreign[..], b"not a model at all"] {
            let e = decode(bad).unwrap_err();
            assert!(e.to_string().contains("not a sparselab export"), "{e}");
        }
    }
}
