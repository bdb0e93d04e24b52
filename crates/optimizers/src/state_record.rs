//! An optimiser's state record that another process can load: burn's record (burnpack bytes)
//! with every parameter id replaced by the parameter's position in the model.
//!
//! burn keys a `ModuleOptimizer`'s record by [`ParamId`]s, which are drawn at random when a
//! model is built, so a model built again in a new process (a run resumed from a checkpoint) has
//! other ids than the one whose state was saved. Positions in the model's [`ParamTable`] order
//! (the visitor's order) are the same for every build of one architecture.
//!
//! [`ParamTable`]: sparselab_core::ParamTable

use burn::module::ParamId;
use burn::optim::ModuleOptimizer;
use burn::optim::OptimizerRecord;
use burn_pack::{Bytes, Reader, Tensor, Writer};

/// `key` (`"<id>"` or `"<id>.<field>"`, as burn writes record names) with its id mapped by
/// `map`; `None` if the key names an id `map` does not know.
fn rekey(key: &str, map: &impl Fn(u64) -> Option<u64>) -> Option<String> {
    let (id, rest) = match key.split_once('.') {
        Some((id, rest)) => (id, Some(rest)),
        None => (key, None),
    };
    let new = map(id.parse().ok()?)?;
    Some(match rest {
        Some(rest) => format!("{new}.{rest}"),
        None => new.to_string(),
    })
}

/// The record in `bytes` with every parameter id mapped by `map`.
fn rekeyed(bytes: Bytes, map: impl Fn(u64) -> Option<u64>) -> Result<Bytes, String> {
    let unknown = |key: &str| format!("the optimiser state names an unknown parameter ({key})");
    let reader = Reader::from_bytes(bytes).map_err(|e| e.to_string())?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = Vec::new();
    for t in reader.into_tensors().map_err(|e| e.to_string())? {
        let (name, dtype, shape, id, bytes) = t.into_parts().map_err(|e| e.to_string())?;
        let name = rekey(&name, &map).ok_or_else(|| unknown(&name))?;
        let id = id.map(|id| map(id).ok_or_else(|| unknown(&id.to_string())));
        tensors.push(Tensor::new(name, dtype, shape, id.transpose()?, bytes));
    }
    // burn writes parameters in its hash map's order; sorted, equal states give equal bytes.
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut writer = Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(&rekey(key, &map).ok_or_else(|| unknown(key))?, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(&rekey(key, &map).ok_or_else(|| unknown(key))?, value);
    }
    writer.into_bytes().map_err(|e| e.to_string())
}

/// `optim`'s state with each parameter named by its position in `ids` (the model's parameters
/// in table order).
///
/// # Errors
/// If the state names a parameter outside `ids`.
pub fn portable_record(optim: &ModuleOptimizer, ids: &[ParamId]) -> Result<Vec<u8>, String> {
    let bytes = optim.to_record().into_bytes().map_err(|e| e.to_string())?;
    let position = |id: u64| ids.iter().position(|p| p.val() == id).map(|i| i as u64);
    Ok(rekeyed(bytes, position)?.to_vec())
}

/// `optim` with the state of a [`portable_record`] loaded, its positions mapped to `ids` (the
/// parameters of the model it now steps, in table order).
///
/// # Errors
/// If the bytes are not a record or name a position outside `ids`.
pub fn load_portable_record(
    optim: ModuleOptimizer,
    bytes: Vec<u8>,
    ids: &[ParamId],
) -> Result<ModuleOptimizer, String> {
    let id_at = |i: u64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| ids.get(i))
            .map(ParamId::val)
    };
    let bytes = rekeyed(Bytes::from_bytes_vec(bytes), id_at)?;
    let record = OptimizerRecord::from_bytes(bytes).map_err(|e| e.to_string())?;
    Ok(optim.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_only_in_their_id() {
        let map = |id: u64| (id == 7).then_some(0);
        assert_eq!(rekey("7.momentum.0", &map).as_deref(), Some("0.momentum.0"));
        assert_eq!(rekey("7", &map).as_deref(), Some("0"));
        assert_eq!(rekey("8.momentum", &map), None);
        assert_eq!(rekey("x.momentum", &map), None);
    }
}
