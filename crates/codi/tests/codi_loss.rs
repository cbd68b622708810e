//! The CODI loss against the independent PyTorch restatement (`scripts/make_codi_loss_fixture.py`),
//! on tiny GPT-2 and Llama fixtures: teacher CE, student CE, each layer's KD term and the total
//! within 1e-4. Also: gradients reach the projection only through the chain of latents.

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::DType;
use latent_codi::batch::collate;
use latent_codi::data::Tokenized;
use latent_codi::loss::{codi_loss, masked_ce, sft_loss, student_forward, DistillLoss, LossConfig};
use latent_codi::CodiModel;
use latent_core::CpuBackend;
use latent_datasets::answer::GoldAnswer;
use serde_json::Value;

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn examples(name: &str) -> Vec<Tokenized> {
    let batch = read_json(fixture(name).join("batch.json"));
    batch["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Tokenized {
            question_text: String::new(),
            question: ids(&e["question"]),
            cot: ids(&e["cot"]),
            answer: ids(&e["answer"]),
            pre_answer: e["pre_answer"].as_u64().unwrap() as usize,
            gold: GoldAnswer::parse("0").unwrap(),
        })
        .collect()
}

fn config(kind: DistillLoss) -> LossConfig {
    LossConfig {
        num_latent: 6,
        distill_loss_factor: 1.0,
        ref_loss_factor: 1.0,
        distill_loss_type: kind,
        reference_masking: false,
    }
}

fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem()
}

fn check_family(name: &str) {
    let device = Default::default();
    let (model, _, meta) =
        CodiModel::<CpuBackend>::load(&fixture(name), &device, DType::F32).unwrap();
    let expected = read_json(fixture(name).join("expected.json"));
    let examples = examples(name);
    let refs: Vec<&Tokenized> = examples.iter().collect();
    let batch = collate(&refs, &meta.tokens, true);
    let terms = codi_loss(&model, &batch, &config(DistillLoss::SmoothL1)).unwrap();
    let close = |what: &str, got: f64, want: &Value| {
        let want = want.as_f64().unwrap();
        assert!(
            (got - want).abs() <= TOL,
            "{name} {what}: rust {got} vs torch {want}"
        );
    };
    close(
        "teacher_ce",
        scalar(&terms.teacher_ce),
        &expected["teacher_ce"],
    );
    close(
        "student_ce",
        scalar(&terms.student_ce),
        &expected["student_ce"],
    );
    close("kd", scalar(&terms.kd), &expected["kd"]);
    close("total", scalar(&terms.total), &expected["total"]);
    let layers = expected["kd_layers"].as_array().unwrap();
    assert_eq!(
        terms.kd_layers.len(),
        layers.len(),
        "{name}: one KD term per hidden state"
    );
    for (l, (got, want)) in terms.kd_layers.iter().zip(layers).enumerate() {
        close(&format!("kd layer {l}"), scalar(got), want);
    }
    // The student pass on its own (left-padded `Q ‖ <bot>`) equals the pass that continues from the
    // teacher's question keys and values.
    let separate = student_forward(&model, &batch, 6, false).unwrap();
    close(
        "separate student_ce",
        scalar(&masked_ce(separate.logits, &batch.decoder)),
        &expected["student_ce"],
    );
    // The CoT-SFT baseline's loss is the teacher CE alone.
    close(
        "cot_sft",
        scalar(&sft_loss(&model, &batch).unwrap()),
        &expected["teacher_ce"],
    );
    // The reference code's masking (no mask after the question, padded positions) changes the
    // student pass of left-padded rows.
    let compat = LossConfig {
        reference_masking: true,
        ..config(DistillLoss::SmoothL1)
    };
    let other = scalar(&codi_loss(&model, &batch, &compat).unwrap().student_ce);
    assert!(
        (other - scalar(&terms.student_ce)).abs() > 1e-4,
        "{name}: compat switch had no effect"
    );
}

#[test]
fn gpt2_loss_terms_match_pytorch() {
    check_family("gpt2");
}

#[test]
fn llama_loss_terms_match_pytorch() {
    check_family("llama");
}

#[test]
fn gradients_flow_through_the_latent_chain() {
    type AB = Autodiff<CpuBackend>;
    let device = Default::default();
    let (model, _, meta) = CodiModel::<AB>::load(&fixture("gpt2"), &device, DType::F32).unwrap();
    let examples = examples("gpt2");
    let refs: Vec<&Tokenized> = examples.iter().collect();
    let batch = collate(&refs, &meta.tokens, true);
    // Student CE alone: the projection is reached only through the fed-back thoughts.
    let cfg = LossConfig {
        distill_loss_factor: 0.0,
        ref_loss_factor: 0.0,
        ..config(DistillLoss::L2)
    };
    let terms = codi_loss(&model, &batch, &cfg).unwrap();
    let grads = terms.total.backward();
    let prj = model.prj.as_ref().unwrap();
    let g = prj
        .fc1
        .weight
        .grad(&grads)
        .expect("projection gets a gradient");
    let norm: f64 = g.abs().sum().into_scalar().elem();
    assert!(norm > 0.0, "zero gradient on the projection");
    // And the first block's weights get gradient from the question pass, through the cache.
    let q = model.lm.layers[0]
        .self_attn
        .k_proj
        .weight
        .grad(&grads)
        .unwrap();
    let norm: f64 = q.abs().sum().into_scalar().elem();
    assert!(norm > 0.0);
}
