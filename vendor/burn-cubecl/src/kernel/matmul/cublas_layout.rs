//! judgeflow: how a row-major product's operands are handed to cuBLAS, which computes in
//! column-major: each operand as a (possibly transposed) column-major matrix with its leading
//! dimension, and the batch dimensions as one strided batch plus a loop of calls.
//!
//! Plain Rust without dependencies, so that judgeflow's CI, which does not build this crate's
//! CUDA feature, runs these tests too: `model/tests/cublas_layout.rs` includes this file.

/// One operand as cuBLAS reads it: a column-major matrix with leading dimension `ld`,
/// transposed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operand {
    /// Whether cuBLAS must transpose the stored matrix (`CUBLAS_OP_T`).
    pub(crate) transpose: bool,
    pub(crate) ld: i64,
}

/// How the row-major product's operand `m` (`rows x cols`, element strides `row_stride`,
/// `col_stride`) is read as the *transposed* operand of the column-major product
/// `out^T = rhs^T lhs^T` cuBLAS computes: a row-major `m` is `m^T` stored column-major (no
/// transpose); a column-major `m` needs one. `None`: neither layout.
pub(crate) fn transposed_operand(
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Option<Operand> {
    if col_stride == 1 && (rows <= 1 || row_stride >= cols) {
        let ld = if rows <= 1 { cols } else { row_stride };
        return Some(Operand {
            transpose: false,
            ld: ld.max(1) as i64,
        });
    }
    if row_stride == 1 && (cols <= 1 || col_stride >= rows) {
        let ld = if cols <= 1 { rows } else { col_stride };
        return Some(Operand {
            transpose: true,
            ld: ld.max(1) as i64,
        });
    }
    None
}

/// Batch geometry: for each output batch dimension, its size and each operand's element stride
/// (0 where the operand broadcasts).
pub(crate) fn batch_strides(
    out_batch: &[usize],
    shape: &[usize],
    strides: &[usize],
) -> Option<Vec<i64>> {
    let dims = shape.len() - 2;
    let lead = out_batch.len() - dims;
    (0..out_batch.len())
        .map(|d| {
            if d < lead {
                return Some(0);
            }
            let (size, stride) = (shape[d - lead], strides[d - lead]);
            if size == out_batch[d] {
                Some(if size == 1 { 0 } else { stride as i64 })
            } else if size == 1 {
                Some(0)
            } else {
                None
            }
        })
        .collect()
}

/// The batch dimensions as cuBLAS calls: the innermost run of dimensions that one element stride
/// per operand spans (merged: e.g. a contiguous `[batch, heads]`) is one strided batch; the
/// dimensions outside it are a loop of calls.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BatchPlan {
    /// The loop's dimensions, outermost first: size and (lhs, rhs, out) element strides.
    pub(crate) outer: Vec<(usize, [i64; 3])>,
    /// The strided batch's count and (lhs, rhs, out) element strides.
    pub(crate) inner: usize,
    pub(crate) inner_strides: [i64; 3],
}

impl BatchPlan {
    pub(crate) fn new(sizes: &[usize], strides: [&[i64]; 3]) -> Self {
        // A dimension of size 1 adds no offset: left out, whatever its strides.
        let dims: Vec<(usize, [i64; 3])> = (0..sizes.len())
            .filter(|&d| sizes[d] != 1)
            .map(|d| (sizes[d], [strides[0][d], strides[1][d], strides[2][d]]))
            .collect();
        let Some(&(mut inner, inner_strides)) = dims.last() else {
            return Self {
                outer: Vec::new(),
                inner: 1,
                inner_strides: [0; 3],
            };
        };
        let mut d = dims.len() - 1;
        while d > 0 {
            let (size, s) = dims[d - 1];
            // Dimension d - 1 continues the run when each operand steps over it by exactly the
            // run's extent (a broadcast operand: 0 over 0).
            if (0..3).any(|o| s[o] != inner_strides[o] * inner as i64) {
                break;
            }
            inner *= size;
            d -= 1;
        }
        Self {
            outer: dims[..d].to_vec(),
            inner,
            inner_strides,
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.outer.iter().map(|(size, _)| size).product()
    }

    /// The (lhs, rhs, out) element offsets of call `index`.
    pub(crate) fn offsets(&self, mut index: usize) -> [i64; 3] {
        let mut offsets = [0i64; 3];
        for (size, strides) in self.outer.iter().rev() {
            let i = (index % size) as i64;
            index /= size;
            for o in 0..3 {
                offsets[o] += i * strides[o];
            }
        }
        offsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_read_in_both_layouts() {
        // Row-major [3, 4] with padded rows: its transpose, stored column-major, no op.
        assert_eq!(
            transposed_operand(3, 4, 6, 1),
            Some(Operand {
                transpose: false,
                ld: 6
            })
        );
        // Column-major [3, 4] (a transposed view): transposed by cuBLAS.
        assert_eq!(
            transposed_operand(3, 4, 1, 3),
            Some(Operand {
                transpose: true,
                ld: 3
            })
        );
        // A row: any row stride; a column: any column stride.
        assert_eq!(
            transposed_operand(1, 4, 0, 1),
            Some(Operand {
                transpose: false,
                ld: 4
            })
        );
        assert_eq!(
            transposed_operand(4, 1, 1, 9),
            Some(Operand {
                transpose: true,
                ld: 4
            })
        );
        // A column whose elements are 3 apart is a row-major matrix with rows 3 apart.
        assert_eq!(
            transposed_operand(4, 1, 3, 1),
            Some(Operand {
                transpose: false,
                ld: 3
            })
        );
        // A column whose elements are 3 apart with another column stride: neither.
        assert_eq!(transposed_operand(4, 1, 3, 7), None);
        // Neither layout.
        assert_eq!(transposed_operand(3, 4, 8, 2), None);
    }

    #[test]
    fn contiguous_batch_dimensions_are_one_call() {
        // [2, 3] batches, all three operands contiguous: one call of 6.
        let plan = BatchPlan::new(&[2, 3], [&[105, 35], &[0, 0], &[30, 10]]);
        assert_eq!(
            (plan.calls(), plan.inner, plan.inner_strides),
            (1, 6, [35, 0, 10])
        );
        // A head-major view of [batch, seq, heads, dim] (the vision attention's queries): heads
        // are strided, the batch is not a multiple of them: a loop over the batch.
        let plan = BatchPlan::new(
            &[2, 16],
            [
                &[16 * 80 * 100, 80],
                &[16 * 80 * 100, 80],
                &[16 * 100 * 100, 100 * 100],
            ],
        );
        assert_eq!((plan.calls(), plan.inner), (2, 16));
        assert_eq!(
            plan.offsets(1),
            [16 * 80 * 100, 16 * 80 * 100, 16 * 100 * 100]
        );
        // No batch dimension: one call of one.
        let plan = BatchPlan::new(&[], [&[], &[], &[]]);
        assert_eq!((plan.calls(), plan.inner), (1, 1));
        // Size-1 dimensions, whatever their strides, do not split the run.
        let plan = BatchPlan::new(&[4, 1, 8], [&[8, 3, 1], &[0, 7, 0], &[8, 5, 1]]);
        assert_eq!(
            (plan.calls(), plan.inner, plan.inner_strides),
            (1, 32, [1, 0, 1])
        );
    }

    #[test]
    fn batch_dimensions_broadcast_or_refuse() {
        assert_eq!(
            batch_strides(&[2, 3], &[2, 3, 5, 7], &[105, 35, 7, 1]),
            Some(vec![105, 35])
        );
        assert_eq!(
            batch_strides(&[2, 3], &[1, 3, 5, 7], &[105, 35, 7, 1]),
            Some(vec![0, 35])
        );
        assert_eq!(batch_strides(&[2, 3], &[5, 7], &[7, 1]), Some(vec![0, 0]));
        assert_eq!(batch_strides(&[2, 3], &[2, 2, 5, 7], &[70, 35, 7, 1]), None);
    }
}
