//! Linear layers: initialised the way transformers' `_init_weights` does (normal weights, zero
//! bias), and applied with their leading dimensions flattened (see [`flat_linear`]).

use burn::module::Initializer;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::module::linear;

use super::few_rows_matmul;

/// A lazily initialised `[d_in, d_out]` linear layer: weights ~ N(0, std²), bias 0.
pub fn init_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    Linear {
        weight: Initializer::Normal { mean: 0.0, std }.init([d_in, d_out], device),
        bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
    }
}

/// `x @ weight + bias` over the last dimension, `[..., d_in]` → `[..., d_out]`, computed on `x`
/// reshaped to `[n, d_in]`.
///
/// The values are those of [`burn::tensor::module::linear`]; the difference is the backward pass.
/// Burn's default weight gradient of a 3-D input `[b, s, d_in]` is a batched product
/// `[b, d_in, d_out]` summed over `b`: `b` small matrix products and a `b·d_in·d_out` buffer per layer
/// and call (for a single-position step with `b` = 32 that is most of the step's cost). On the
/// flattened input it is one `[d_in, n] × [n, d_out]` product.
pub fn flat_linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    on_rows(x, |rows| match few_rows_matmul::parts_for(&rows, &weight) {
        1 => linear(rows, weight, bias),
        // A decoding step's few rows, cut across threads; on Flex `linear` is this product plus
        // the bias.
        parts => {
            let out = few_rows_matmul::split_depth(rows, weight, parts);
            match bias {
                Some(bias) => out + bias.unsqueeze(),
                None => out,
            }
        }
    })
}

/// `x` `[..., d]` times the transpose of `weight` `[v, d]` → `[..., v]` (a tied output head), on `x`
/// flattened to `[n, d]` for the reason [`flat_linear`] gives.
pub fn flat_matmul_transposed<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
) -> Tensor<B, D> {
    // matmul reads the transposed view in place (`linear` would copy it on every call).
    on_rows(x, |rows| {
        let weight = weight.transpose();
        match few_rows_matmul::parts_for(&rows, &weight) {
            1 => rows.matmul(weight),
            parts => few_rows_matmul::split_columns(rows, weight, parts),
        }
    })
}

/// Applies `f` to `x` `[..., d]` viewed as rows `[n, d]`; `f`'s `[n, e]` comes back as `[..., e]`.
fn on_rows<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, D> {
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let out = f(x.reshape([rows, dims[D - 1]]));
    dims[D - 1] = out.dims()[1];
    out.reshape(dims)
}

/// [`Linear::forward`] through [`flat_linear`].
pub trait FlatForward<B: Backend> {
    /// `[..., d_in]` → `[..., d_out]`.
    fn forward_flat<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D>;
}

impl<B: Backend> FlatForward<B> for Linear<B> {
    fn forward_flat<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        flat_linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type Ad = Autodiff<Flex>;

    /// Same values and gradients as Burn's `linear` on a 3-D input.
    #[test]
    fn flat_linear_matches_burn_linear() {
        let device = Default::default();
        let x = Tensor::<Ad, 3>::random([3, 5, 4], Distribution::Default, &device).require_grad();
        let w = Tensor::<Ad, 2>::random([4, 6], Distribution::Default, &device).require_grad();
        let b = Tensor::<Ad, 1>::random([6], Distribution::Default, &device).require_grad();
        let ours = flat_linear(x.clone(), w.clone(), Some(b.clone()));
        let theirs = linear(x.clone(), w.clone(), Some(b.clone()));
        ours.to_data()
            .assert_approx_eq::<f32>(&theirs.to_data(), Default::default());
        let weights = Tensor::<Ad, 3>::random([3, 5, 6], Distribution::Default, &device);
        let g_ours = (ours * weights.clone()).sum().backward();
        let g_theirs = (theirs * weights).sum().backward();
        let close =
            |a: TensorData, b: TensorData| a.assert_approx_eq::<f32>(&b, Default::default());
        close(
            x.grad(&g_ours).expect("grad").to_data(),
            x.grad(&g_theirs).expect("grad").to_data(),
        );
        close(
            w.grad(&g_ours).expect("grad").to_data(),
            w.grad(&g_theirs).expect("grad").to_data(),
        );
        close(
            b.grad(&g_ours).expect("grad").to_data(),
            b.grad(&g_theirs).expect("grad").to_data(),
        );
    }

    /// The tied head equals a matmul with the transposed weight.
    #[test]
    fn flat_matmul_transposed_matches_batched_matmul() {
        let device = Default::default();
        let x = Tensor::<Flex, 3>::random([2, 3, 4], Distribution::Default, &device);
        let w = Tensor::<Flex, 2>::random([7, 4], Distribution::Default, &device);
        let ours = flat_matmul_transposed(x.clone(), w.clone());
        let theirs = x.matmul(w.unsqueeze::<3>().swap_dims(1, 2));
        assert_eq!(ours.dims(), [2, 3, 7]);
        ours.to_data()
            .assert_approx_eq::<f32>(&theirs.to_data(), Default::default());
    }
}
