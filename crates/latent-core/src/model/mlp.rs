//! Feed-forward blocks: gated SiLU (Llama, Qwen) and GELU (GPT-2).

use burn::prelude::*;
use burn::tensor::activation::{gelu, gelu_approximate, silu};

use super::linear::init_linear;
use super::lora_linear::LoraLinear;
use crate::hf::config::{MlpKind, ModelConfig};

/// The feed-forward block. GPT-2's `c_fc`/`c_proj` are `up_proj`/`down_proj` here.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Gate projection `[hidden, intermediate]` (gated SiLU only).
    pub gate_proj: Option<LoraLinear<B>>,
    /// Up projection `[hidden, intermediate]`.
    pub up_proj: LoraLinear<B>,
    /// Down projection `[intermediate, hidden]`.
    pub down_proj: LoraLinear<B>,
    kind: MlpKind,
}

impl<B: Backend> Mlp<B> {
    /// A randomly initialised (lazy) block for `config`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let (h, f, bias, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.mlp_bias,
            config.initializer_range,
        );
        Self {
            gate_proj: (config.mlp == MlpKind::GatedSilu)
                .then(|| init_linear(h, f, bias, std, device).into()),
            up_proj: init_linear(h, f, bias, std, device).into(),
            down_proj: init_linear(f, h, bias, std, device).into(),
            kind: config.mlp,
        }
    }

    /// Shape: `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let inner = match (&self.gate_proj, self.kind) {
            (Some(gate), _) => silu(gate.forward(x.clone())) * self.up_proj.forward(x),
            (None, MlpKind::Gelu { tanh: true }) => gelu_approximate(self.up_proj.forward(x)),
            (None, _) => gelu(self.up_proj.forward(x)),
        };
        self.down_proj.forward(inner)
    }
}
