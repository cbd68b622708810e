//! The forward contract under `Autodiff`: gradients reach the weights and the input embeddings.

mod common;

use burn::backend::Autodiff;
use burn::prelude::*;
use common::{fixture_dir, load_model_on};
use latent_core::{CpuBackend, LmInput};

type AB = Autodiff<CpuBackend>;

#[test]
fn gradients_reach_weights_and_input_embeddings() {
    for name in ["llama", "qwen2", "qwen3", "gpt2"] {
        let device = Default::default();
        let model = load_model_on::<AB>(&fixture_dir(name));

        let ids = Tensor::<AB, 2, Int>::from_ints([[3, 9, 27, 4]], &device);
        let embeds = model.embed(ids.clone()).detach().require_grad();
        let replace = Tensor::<AB, 2, Bool>::from_bool(
            TensorData::from([[false, true, true, false]]),
            &device,
        );
        let out = model
            .forward(LmInput::mixed(ids, embeds.clone(), replace))
            .unwrap();
        let loss = out.logits.slice([0..1, 3..4]).sum();
        let grads = loss.backward();

        let g = embeds.grad(&grads).expect("gradient for input embeddings");
        let per_position: Vec<f32> = g
            .abs()
            .sum_dim(2)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap();
        assert!(
            per_position[1] > 0.0 && per_position[2] > 0.0,
            "{name}: latent positions get gradient"
        );
        assert_eq!(
            per_position[0], 0.0,
            "{name}: a replaced-by-token position gets none"
        );
        let q = model.layers[0]
            .self_attn
            .q_proj
            .weight
            .val()
            .grad(&grads)
            .expect("q_proj gradient");
        let q_norm: f32 = q.abs().sum().into_scalar().elem();
        assert!(q_norm > 0.0, "{name}: q_proj gradient is zero");
        let e = model
            .embed_tokens
            .weight
            .val()
            .grad(&grads)
            .expect("embedding gradient");
        assert!(
            e.abs().sum().into_scalar().elem::<f32>() > 0.0,
            "{name}: embedding gradient is zero"
        );
    }
}
