//! The model surface RL needs: logits at selected positions only, and per-token log-probabilities
//! computed a chunk of positions at a time — equal to the full-logits path in value and, under
//! autodiff, in gradient.

mod common;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use common::*;
use latent_core::hf::safetensors::HostTensor;
use latent_core::model::LogprobOptions;
use latent_core::{CausalLm, CpuBackend, LmInput};

type AB = Autodiff<CpuBackend>;

const IDS: [[i64; 7]; 2] = [[5, 17, 42, 8, 91, 33, 2], [11, 3, 57, 23, 9, 70, 4]];
const TARGETS: [[i64; 7]; 2] = [[17, 42, 8, 91, 33, 2, 60], [3, 57, 23, 9, 70, 4, 1]];

fn ints<BK: Backend>(rows: [[i64; 7]; 2]) -> Tensor<BK, 2, Int> {
    Tensor::from_data(
        TensorData::new(rows.iter().flatten().copied().collect::<Vec<_>>(), [2, 7]),
        &Default::default(),
    )
}

fn to_host<BK: Backend, const D: usize>(t: Tensor<BK, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().unwrap(),
    }
}

/// The full path: `[b, s, vocab]` logits, log-softmax, gather.
fn full_logprobs<BK: Backend>(model: &CausalLm<BK>, temperature: f32) -> Tensor<BK, 2> {
    let logits = model.forward(LmInput::ids(ints(IDS))).unwrap().logits / temperature;
    log_softmax(logits, 2)
        .gather(2, ints::<BK>(TARGETS).unsqueeze_dim(2))
        .squeeze_dim(2)
}

#[test]
fn chunked_logprobs_equal_the_full_logits_path() {
    for name in ["llama", "qwen2", "gpt2"] {
        let model = load_model(name);
        let hidden = model
            .forward_hidden(LmInput::ids(ints(IDS)))
            .unwrap()
            .last_hidden;
        for temperature in [1.0, 0.7] {
            let full = to_host(full_logprobs(&model, temperature));
            for chunk in [1, 3, 7, 100] {
                let got = model
                    .token_logprobs(
                        hidden.clone(),
                        ints(TARGETS),
                        LogprobOptions { chunk, temperature },
                    )
                    .unwrap();
                let diff = max_abs_diff(&to_host(got), &full);
                assert!(diff <= 1e-5, "{name} T {temperature} chunk {chunk}: {diff}");
            }
        }
    }
}

#[test]
fn logits_to_keep_computes_the_last_positions_only() {
    let model = load_model("llama");
    let full = model.forward(LmInput::ids(ints(IDS))).unwrap();
    let kept = model
        .forward(LmInput::ids(ints(IDS)).logits_to_keep(2))
        .unwrap();
    assert_eq!(kept.logits.dims(), [2, 2, 96]);
    assert_eq!(
        to_host(kept.logits).data,
        to_host(full.logits.slice([0..2, 5..7])).data
    );
    assert_eq!(
        to_host(kept.last_hidden).data,
        to_host(full.last_hidden).data
    );
}

/// Gradients of every float parameter, by path.
fn gradients(
    model: &CausalLm<AB>,
    grads: &<AB as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Vec<(String, HostTensor)> {
    struct Collect<'a> {
        grads: &'a <AB as burn::tensor::backend::AutodiffBackend>::Gradients,
        path: Vec<String>,
        out: Vec<(String, HostTensor)>,
    }
    impl ModuleVisitor<AB> for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.push((self.path.join("."), to_host(g)));
            }
        }
    }
    let mut c = Collect {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut c);
    c.out
}

/// A GRPO-shaped loss of the log-probs: the ratio term with a fixed advantage per row plus the k3 KL
/// to a fixed reference, masked, mean per row then over rows.
fn grpo_like(logp: Tensor<AB, 2>) -> Tensor<AB, 1> {
    let device = Default::default();
    let adv = Tensor::<AB, 2>::from_data(TensorData::new(vec![0.7f32, -1.3], [2, 1]), &device);
    let reference = logp.clone().detach() - 0.1;
    let mask = Tensor::<AB, 2>::from_data(
        TensorData::new(
            vec![1.0f32, 1., 1., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1., 1.],
            [2, 7],
        ),
        &device,
    );
    let ratio = (logp.clone() - logp.clone().detach()).exp();
    let d = reference - logp;
    let kl = d.clone().exp() - d - 1.0;
    let per_token = (ratio * adv).neg() + kl * 0.04;
    ((per_token * mask.clone()).sum_dim(1) / mask.sum_dim(1)).mean()
}

#[test]
fn logprob_loss_has_the_full_paths_value_and_gradients() {
    for name in ["llama", "qwen2"] {
        let model = load_model_on::<AB>(&fixture_dir(name));
        let full_loss = grpo_like(full_logprobs(&model, 0.9));
        let full_value = to_host(full_loss.clone()).data[0];
        let full = gradients(&model, &full_loss.backward());

        let model = load_model_on::<AB>(&fixture_dir(name));
        let hidden = model
            .forward_hidden(LmInput::ids(ints(IDS)))
            .unwrap()
            .last_hidden;
        let out = model
            .logprob_loss(
                hidden,
                ints(TARGETS),
                LogprobOptions {
                    chunk: 3,
                    temperature: 0.9,
                },
                |logp| Ok((grpo_like(logp), ())),
            )
            .unwrap();
        let loss = out.loss;
        let entropy = to_host(out.entropy);
        assert!(
            entropy
                .data
                .iter()
                .all(|&e| e > 0.0 && e <= (96f32).ln() + 1e-4),
            "{name}: entropies in (0, ln V]"
        );
        let value = to_host(loss.clone()).data[0];
        assert!(
            (value - full_value).abs() <= 1e-6,
            "{name}: {value} vs {full_value}"
        );
        let chunked = gradients(&model, &loss.backward());
        assert_eq!(
            chunked.len(),
            full.len(),
            "{name}: parameters with gradients"
        );
        let head = if name == "llama" {
            "lm_head.weight"
        } else {
            "embed_tokens.weight"
        };
        assert!(
            chunked.iter().any(|(p, _)| p == head),
            "{name}: the head gets a gradient"
        );
        for ((path, g), (full_path, want)) in chunked.iter().zip(&full) {
            assert_eq!(path, full_path);
            let scale = want
                .data
                .iter()
                .fold(0.0f32, |m, x| m.max(x.abs()))
                .max(1e-3);
            let diff = max_abs_diff(g, want);
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "{name} {path}: gradient differs by {diff} (scale {scale})"
            );
        }
    }
}

/// In bf16 (the working copy of a mixed-precision run) the chunked loss runs, its value is f32 and
/// close to the f32 model's, and every parameter still gets its gradient (in bf16).
#[test]
fn logprob_loss_runs_in_bf16_with_an_f32_value() {
    use burn::tensor::DType;
    let options = LogprobOptions {
        chunk: 3,
        temperature: 0.9,
    };
    let run = |model: &CausalLm<AB>| {
        let hidden = model
            .forward_hidden(LmInput::ids(ints(IDS)))
            .unwrap()
            .last_hidden;
        model
            .logprob_loss(hidden, ints(TARGETS), options, |logp| {
                Ok((grpo_like(logp), ()))
            })
            .unwrap()
            .loss
    };
    let model = load_model_on::<AB>(&fixture_dir("qwen2"));
    let f32_value = to_host(run(&model)).data[0];
    let bf16 = model.clone().cast_params(DType::BF16);
    let loss = run(&bf16);
    assert_eq!(loss.dtype(), DType::F32);
    let value = to_host(loss.clone()).data[0];
    assert!(
        (value - f32_value).abs() <= 0.02 * f32_value.abs().max(1.0),
        "bf16 {value} vs f32 {f32_value}"
    );
    let grads = gradients(&bf16, &loss.backward());
    assert_eq!(
        grads.len(),
        gradients(&model, &run(&model).backward()).len()
    );
}
