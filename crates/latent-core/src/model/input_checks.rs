//! Checks of the values given to the forward contract, so that a bad id or position returns an
//! error naming it instead of a panic (or, on a GPU, a gather that reads garbage).

use burn::prelude::*;

use crate::{CoreError, Result};

/// Fails with the first entry of `values` `[batch, seq]` outside `0..limit` (row-major order).
/// One device-to-host read of two scalars when every value is in range.
pub(crate) fn check_in_range<B: Backend>(
    values: &Tensor<B, 2, Int>,
    limit: usize,
    what: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    let [b, s] = values.dims();
    if b * s == 0 {
        return Ok(());
    }
    let bounds = Tensor::cat(
        vec![
            values.clone().min().reshape([1]),
            values.clone().max().reshape([1]),
        ],
        0,
    );
    let bounds: Vec<i64> = bounds
        .into_data()
        .convert::<i64>()
        .into_vec()
        .expect("int data");
    let in_range = |v: i64| v >= 0 && (v as u64) < limit as u64;
    if in_range(bounds[0]) && in_range(bounds[1]) {
        return Ok(());
    }
    let host: Vec<i64> = values
        .clone()
        .into_data()
        .convert::<i64>()
        .into_vec()
        .expect("int data");
    let (i, &value) = host
        .iter()
        .enumerate()
        .find(|(_, &v)| !in_range(v))
        .expect("min or max is out of range");
    Err(CoreError::InvalidInput {
        what,
        value,
        row: i / s,
        position: i % s,
        reason: reason(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn ids(rows: Vec<i64>, shape: [usize; 2]) -> Tensor<Flex, 2, Int> {
        Tensor::from_data(TensorData::new(rows, shape), &Default::default())
    }

    #[test]
    fn names_the_first_value_out_of_range() {
        let ok = ids(vec![0, 5, 9, 3], [2, 2]);
        assert!(check_in_range(&ok, 10, "token id", String::new).is_ok());
        let bad = ids(vec![0, 5, 12, 10], [2, 2]);
        let err = check_in_range(&bad, 10, "token id", || "vocabulary of 10".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "forward: token id 12 (batch row 1, position 0): vocabulary of 10"
        );
        let negative = ids(vec![0, -1], [1, 2]);
        let err = check_in_range(&negative, 10, "position", String::new).unwrap_err();
        assert!(matches!(
            err,
            CoreError::InvalidInput {
                value: -1,
                row: 0,
                position: 1,
                ..
            }
        ));
    }
}
