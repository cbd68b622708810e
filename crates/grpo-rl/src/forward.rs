//! The policy's forward over rollouts: the inputs HRPO trains on (stored thinking states replayed
//! through the residual, or states recomputed through the projection in two passes) and the hidden
//! states that predict the completion tokens.
//!
//! **Two passes** (design 001, with the spec's corrections): pass 1, without gradients, runs the
//! rollout's own fused inputs (stored states), so its hidden states are those generation saw;
//! position t's state is recomputed *with* gradients as `normalize(W_p · hidden_{t−1})`, from the
//! hidden state that produced token t; pass 2 mixes these states in and computes the loss, so `W_p`
//! gets gradients. Design 001's variants are options ([`RecomputeInputs::Tokens`]: pass 1 on plain
//! tokens; [`StatePosition::Same`]: `hidden_t`). This back-propagates through one step of the
//! token-to-token recurrence only: the exact gradient would also flow through how `W_p` changed the
//! earlier inputs that produced `hidden_{t−1}`, which needs an unrolled sequential forward.

use burn::prelude::*;
use latent_core::latent::{RolloutTensors, ThinkingLm};
use latent_core::LmInput;

use crate::config::{HrpoSection, RecomputeInputs, StatePosition};
use crate::Result;

/// The hidden states `[n, T, H]` the projection reads for each position (pass 1, no gradient
/// needed): the final hidden states of the sequence under `hrpo`'s variant, shifted right by one
/// for [`StatePosition::Previous`] (position 0, a prompt position, reads zeros).
pub fn projection_sources<B: Backend>(
    model: &ThinkingLm<B>,
    t: &RolloutTensors<B>,
    hrpo: &HrpoSection,
) -> Result<Tensor<B, 3>> {
    let embeds = match hrpo.recompute_inputs {
        RecomputeInputs::Fused => {
            model
                .mixed_input(
                    t.ids.clone(),
                    t.thinking_mask.clone(),
                    t.thinking_states.clone(),
                )?
                .embeds
        }
        RecomputeInputs::Tokens => model.lm.embed(t.ids.clone()),
    };
    let hidden = model
        .lm
        .forward_hidden(LmInput::embeds(embeds).attention_mask(t.attention_mask.clone()))?
        .last_hidden;
    Ok(match hrpo.state_position {
        StatePosition::Same => hidden,
        StatePosition::Previous => {
            let [n, s, h] = hidden.dims();
            let zeros = Tensor::<B, 3>::zeros([n, 1, h], (&hidden.device(), hidden.dtype()));
            Tensor::cat(vec![zeros, hidden.slice([0..n, 0..s - 1, 0..h])], 1)
        }
    })
}

/// The final hidden states `[n, C, H]` at the positions that predict the `C` completion tokens
/// (`P − 1 .. P + C − 1`), with thinking states mixed in when `mix` (`states` `[n, T, H]` replaces
/// the stored ones, e.g. recomputed through the projection).
pub fn completion_hidden<B: Backend>(
    model: &ThinkingLm<B>,
    t: &RolloutTensors<B>,
    prompt_width: usize,
    completion_width: usize,
    mix: bool,
    states: Option<Tensor<B, 3>>,
) -> Result<Tensor<B, 3>> {
    let embeds = if mix {
        let states = states.unwrap_or_else(|| t.thinking_states.clone());
        model
            .mixed_input(t.ids.clone(), t.thinking_mask.clone(), states)?
            .embeds
    } else {
        model.lm.embed(t.ids.clone())
    };
    let hidden = model
        .lm
        .forward_hidden(LmInput::embeds(embeds).attention_mask(t.attention_mask.clone()))?
        .last_hidden;
    let [n, _, h] = hidden.dims();
    Ok(hidden.slice([
        0..n,
        prompt_width - 1..prompt_width - 1 + completion_width,
        0..h,
    ]))
}
