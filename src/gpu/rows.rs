//! Row gathers and their transposes (`shaders/rows.wgsl`): the completion rows of a packed
//! sequence are gathered out of its hidden states, and their gradients summed back.

use bytemuck::{Pod, Zeroable};

use super::kernels::{Kernel, Recorder, groups_2d};
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

/// `shaders/rows.wgsl`'s uniforms.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct RowsParams {
    pub rows: u32,
    pub width: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The `index` buffer for dst row i = src row `sources[i]`.
pub fn gather_index(sources: &[u32]) -> Vec<u32> {
    let n = sources.len() as u32;
    let mut index: Vec<u32> = (0..=n).map(|i| n + 1 + i).collect();
    index.extend_from_slice(sources);
    index
}

/// The transpose of `gather_index(sources)`: dst row r (of `rows`) = Σ src rows i with
/// sources[i] = r. Sources past `rows` are an error.
pub fn scatter_index(sources: &[u32], rows: usize) -> Result<Vec<u32>> {
    let mut lists = vec![Vec::new(); rows];
    for (i, &s) in sources.iter().enumerate() {
        lists
            .get_mut(s as usize)
            .ok_or_else(|| Error::Invalid(format!("row {s} is outside {rows} rows")))?
            .push(i as u32);
    }
    let mut index = Vec::with_capacity(rows + 1 + sources.len());
    let mut at = rows as u32 + 1;
    for l in &lists {
        index.push(at);
        at += l.len() as u32;
    }
    index.push(at);
    index.extend(lists.into_iter().flatten());
    Ok(index)
}

impl Recorder<'_> {
    /// dst [rows, width] = per row, the sum of the src [_, width] rows `index` lists for it
    /// (built by `gather_index` or `scatter_index`; the lists must name rows of src).
    pub fn gather_rows(
        &mut self,
        src: &GpuBuffer,
        index: &GpuBuffer,
        dst: &GpuBuffer,
        rows: usize,
        width: usize,
    ) -> Result<()> {
        if dst.bytes < (rows * width * 4) as u64 || index.bytes < (rows as u64 + 1) * 4 {
            return Err(Error::Invalid(format!(
                "gather_rows: {rows} rows of {width} need {} bytes of dst and an index of {} rows",
                rows * width * 4,
                rows + 1
            )));
        }
        if rows * width == 0 {
            return Ok(());
        }
        let params = RowsParams {
            rows: rows as u32,
            width: width as u32,
            _pad0: 0,
            _pad1: 0,
        };
        let g = groups_2d(self.gpu, ((rows * width) as u32).div_ceil(256));
        self.dispatch(
            Kernel::GatherRows,
            &params,
            &[&src.buffer, &index.buffer, &dst.buffer],
            g,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices() {
        assert_eq!(gather_index(&[2, 0]), vec![3, 4, 5, 2, 0]);
        // dst 0 ← src 1; dst 1 ← nothing; dst 2 ← src 0 + src 2.
        assert_eq!(
            scatter_index(&[2, 0, 2], 3).unwrap(),
            vec![4, 5, 5, 7, 1, 0, 2]
        );
        assert!(scatter_index(&[3], 3).is_err());
    }
}
