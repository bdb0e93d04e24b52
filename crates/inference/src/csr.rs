//! Compressed sparse rows.

/// A sparse matrix in CSR form: row `r`'s non-zeros are `values[indptr[r]..indptr[r + 1]]`, in
/// columns `indices[...]`, ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row starts (`rows + 1` entries).
    pub indptr: Vec<usize>,
    /// Column of each non-zero.
    pub indices: Vec<u32>,
    /// Each non-zero.
    pub values: Vec<f32>,
}

impl Csr {
    /// The non-zeros of the row-major matrix `dense` (`rows` rows).
    ///
    /// # Panics
    /// If `dense.len()` is not a multiple of `rows`, or a column index exceeds `u32`.
    pub fn from_dense(dense: &[f32], rows: usize) -> Self {
        let cols = dense.len().checked_div(rows).unwrap_or(0);
        assert_eq!(rows * cols, dense.len(), "a {rows}-row matrix");
        let column = |c: usize| u32::try_from(c).expect("columns fit u32");
        let mut indptr = Vec::with_capacity(rows + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for row in dense.chunks_exact(cols.max(1)).take(rows) {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(column(c));
                    values.push(v);
                }
            }
            indptr.push(values.len());
        }
        Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        }
    }

    /// Number of stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The row-major dense matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                out[r * self.cols + self.indices[k] as usize] = self.values[k];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `to_dense` undoes `from_dense`, and only non-zeros are stored.
        #[test]
        fn dense_round_trips(rows in 1usize..6, cols in 1usize..6, seed in any::<u64>()) {
            let dense: Vec<f32> = (0..rows * cols)
                .map(|i| {
                    let h = (i as u64 + 1).wrapping_mul(seed | 1).wrapping_mul(0x9e37_79b9);
                    if h.is_multiple_of(3) { 0.0 } else { (h % 17) as f32 - 8.0 }
                })
                .collect();
            let csr = Csr::from_dense(&dense, rows);
            prop_assert_eq!(csr.to_dense(), dense.clone());
            prop_assert_eq!(csr.nnz(), dense.iter().filter(|v| **v != 0.0).count());
            prop_assert_eq!(csr.indptr.len(), rows + 1);
        }
    }
}
