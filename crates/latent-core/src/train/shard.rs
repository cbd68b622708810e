//! Splitting a micro-batch across data-parallel replicas: a batch counts its examples ("units":
//! rows, or whole groups for a loss over groups) and gives the contiguous piece of a unit range.
//! [`shard_range`] cuts `units` into `parts` contiguous pieces whose sizes differ by at most one
//! (some empty when there are fewer units than parts).

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::BasicOps;

use crate::{CoreError, Result};

/// A micro-batch that data-parallel training can split into per-replica shards.
///
/// The loss of a [`super::TrainStep`] is a mean over the units of its micro-batch, so the
/// gradient of a global micro-batch is the unit-weighted mean of its shards' gradients.
pub trait Shard<B: Backend>: Sized {
    /// How many examples (units) the micro-batch holds.
    fn units(&self) -> usize;

    /// The units `range` (within `0..self.units()`), placed on `device`.
    fn shard(&self, range: Range<usize>, device: &B::Device) -> Result<Self>;
}

/// The units of piece `part` when `units` are cut into `parts` contiguous pieces: the first
/// `units % parts` pieces hold one unit more, so with fewer units than parts the last pieces are
/// empty. An error (naming the sizes) for an empty micro-batch or a `part` out of range.
pub fn shard_range(units: usize, part: usize, parts: usize) -> Result<Range<usize>> {
    if parts == 0 || part >= parts {
        return Err(CoreError::Shape(format!(
            "shard {part} of {parts}: no such shard"
        )));
    }
    if units == 0 {
        return Err(CoreError::Shape(
            "an empty micro-batch cannot be sharded".to_string(),
        ));
    }
    let (base, extra) = (units / parts, units % parts);
    let start = part * base + part.min(extra);
    let len = base + usize::from(part < extra);
    Ok(start..start + len)
}

/// Rows of dimension 0.
impl<B: Backend, const D: usize, K: BasicOps<B>> Shard<B> for Tensor<B, D, K> {
    fn units(&self) -> usize {
        self.dims()[0]
    }

    fn shard(&self, range: Range<usize>, device: &B::Device) -> Result<Self> {
        let rows = self.dims()[0];
        if range.end > rows || range.start >= range.end {
            return Err(CoreError::Shape(format!(
                "shard rows {range:?} of a tensor with {rows} rows (shape {:?})",
                self.dims()
            )));
        }
        Ok(self
            .clone()
            .narrow(0, range.start, range.len())
            .to_device(device))
    }
}

/// Both halves split alike (e.g. `(inputs, targets)`); they must hold the same number of units.
impl<B: Backend, X: Shard<B>, Y: Shard<B>> Shard<B> for (X, Y) {
    fn units(&self) -> usize {
        self.0.units()
    }

    fn shard(&self, range: Range<usize>, device: &B::Device) -> Result<Self> {
        let (a, b) = (self.0.units(), self.1.units());
        if a != b {
            return Err(CoreError::Shape(format!(
                "the two parts of a micro-batch hold {a} and {b} examples; they must match to be \
                 sharded"
            )));
        }
        Ok((
            self.0.shard(range.clone(), device)?,
            self.1.shard(range, device)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_units_once_and_differ_by_at_most_one() {
        for units in 2..12 {
            for parts in 1..=units.min(5) {
                let pieces: Vec<_> = (0..parts)
                    .map(|p| shard_range(units, p, parts).unwrap())
                    .collect();
                assert_eq!(pieces[0].start, 0);
                assert_eq!(pieces[parts - 1].end, units);
                for w in pieces.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let lens: Vec<_> = pieces.iter().map(|r| r.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
        assert_eq!(shard_range(8, 1, 2).unwrap(), 4..8);
        assert_eq!(shard_range(5, 0, 2).unwrap(), 0..3);
        assert_eq!(shard_range(1, 0, 2).unwrap(), 0..1);
        assert!(shard_range(1, 1, 2).unwrap().is_empty());
        assert!(shard_range(0, 0, 2)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(shard_range(4, 2, 2).is_err());
    }
}
