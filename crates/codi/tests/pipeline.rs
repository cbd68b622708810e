//! Preprocessing, configs, parameter counts of the published runs, and train → save → reload →
//! evaluate on the tiny CPU config.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use latent_codi::config::{CodiRunConfig, DataFormat};
use latent_codi::data::{prepare, PrepConfig, Problem};
use latent_codi::eval::{evaluate, EvalConfig};
use latent_codi::model::count_parameters;
use latent_codi::run::{
    build, build_model, load_problems, make_trainable, prep_config, train, TrainOptions,
};
use latent_codi::{CodiModel, Task};
use latent_core::hf::tokenizer::load_tokenizer;
use latent_core::model::NewRowInit;
use latent_core::CpuBackend;

type AB = Autodiff<CpuBackend>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `f` with the repository root as working directory (configs use repo-relative paths).
fn in_repo<T>(f: impl FnOnce() -> T) -> T {
    std::env::set_current_dir(repo()).unwrap();
    f()
}

fn tiny_tokenizer() -> tokenizers::Tokenizer {
    load_tokenizer(repo().join("crates/latent-core/tests/fixtures/tiny-chat/tokenizer.json"))
        .unwrap()
}

#[test]
fn preprocessing_follows_the_reference() {
    let tok = tiny_tokenizer();
    let problems = vec![
        Problem {
            question: "  Tom has  3 apples. ".into(),
            steps: vec!["<<3*2=6>>".into(), "<<6+1=7>>".into()],
            answer: "7".into(),
        },
        Problem {
            question: "Negative?".into(),
            steps: vec!["<<1-3=-2>>".into()],
            answer: "-2".into(),
        },
        Problem {
            question: "A long question with many many words in it, far more than the first one has, so that it is longer".into(),
            steps: vec!["<<1+1=2>>".into()],
            answer: "2".into(),
        },
    ];
    let (all, _) = prepare(&problems, &tok, &PrepConfig::default()).unwrap();
    let first = all[0].question.len() + all[0].cot.len() + all[0].answer.len();
    let config = PrepConfig {
        max_token_num: Some(first),
        ..PrepConfig::default()
    };
    let (out, report) = prepare(&problems, &tok, &config).unwrap();
    assert_eq!(
        (
            report.total,
            report.kept,
            report.non_digit_answer,
            report.too_long
        ),
        (3, 1, 1, 1)
    );
    let e = &out[0];
    assert_eq!(e.question_text, "Tom has 3 apples.");
    // The last step is dropped: only <<3*2=6>> remains.
    assert_eq!(tok.decode(&e.cot, false).unwrap(), "<<3*2=6>>");
    assert_eq!(tok.decode(&e.answer, false).unwrap(), "The answer is: 7");
    // The distilled token is the one just before the first token holding a digit.
    let before = tok.decode(&e.answer[..=e.pre_answer], false).unwrap();
    let digit = tok.decode(&[e.answer[e.pre_answer + 1]], false).unwrap();
    assert!(
        before.ends_with(':') || before.ends_with(": "),
        "{before:?}"
    );
    assert!(digit.contains('7'), "{digit:?}");
    // Keeping the last step (the ablation) keeps both equations.
    let keep = PrepConfig {
        keep_last_step: true,
        ..PrepConfig::default()
    };
    let (out, _) = prepare(&problems[..1], &tok, &keep).unwrap();
    assert_eq!(
        tok.decode(&out[0].cot, false).unwrap(),
        "<<3*2=6>> <<6+1=7>>"
    );
}

#[test]
fn every_shipped_config_loads_and_validates() {
    in_repo(|| {
        for entry in std::fs::read_dir("configs/codi").unwrap() {
            let path = entry.unwrap().path();
            CodiRunConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        // The published runs start the added rows at the mean (as the reference) and read
        // GSM8k-Aug in its Hugging Face form; the CPU config keeps random rows.
        for name in ["gpt2-gsm8k-aug", "llama-3.2-1b-gsm8k-aug"] {
            let path = PathBuf::from(format!("configs/codi/{name}.yaml"));
            let c = CodiRunConfig::load(&path, &[]).unwrap();
            assert_eq!(c.method.new_token_init, NewRowInit::Mean, "{name}");
            assert_eq!(c.data.train_format, DataFormat::IcotHf, "{name}");
        }
        let tiny = CodiRunConfig::load(Path::new("configs/codi/tiny-cpu.yaml"), &[]).unwrap();
        assert_eq!(tiny.method.new_token_init, NewRowInit::Random);
        let path = Path::new("configs/codi/gpt2-gsm8k-aug.yaml");
        let c = CodiRunConfig::load(
            path,
            &["training.epochs=2".into(), "method.task=cot_sft".into()],
        )
        .unwrap();
        assert_eq!(
            (c.training.epochs, c.method.task, c.accumulation()),
            (2, Task::CotSft, 4)
        );
        let err = CodiRunConfig::load(path, &["training.epoch=2".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `epochs`"), "{err}");
        let err = CodiRunConfig::load(path, &["training.effective_batch_size=100".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("effective_batch_size") && err.contains("multiple"),
            "{err}"
        );
    });
}

#[test]
fn gpt2_lora_run_trains_the_reference_parameter_count() {
    in_repo(|| {
        let mut config =
            CodiRunConfig::load(Path::new("configs/codi/gpt2-gsm8k-aug.yaml"), &[]).unwrap();
        config.model.name_or_path = None; // architecture only, as --dry-run does
        let (model, _, meta) = build_model::<AB>(&config, &Default::default()).unwrap();
        assert_eq!(
            (meta.tokens.pad, meta.tokens.bot, meta.tokens.eot),
            (50257, 50258, 50259)
        );
        let model = make_trainable(model, &config).unwrap();
        let counts = count_parameters(&model);
        // LoRA r=128 on c_attn, attn/mlp c_proj and c_fc of 12 layers + the projection (as the
        // reference's print_trainable_parameters reports).
        assert_eq!(counts.trainable, 20_057_088);
        assert_eq!(count_parameters(&model.prj).total, 1_182_720);
    });
}

#[test]
fn trained_model_reloads_and_evaluates_identically() {
    in_repo(|| {
        let out = std::env::temp_dir().join(format!("codi-reload-{}", std::process::id()));
        let overrides = [
            format!("training.output_dir={}", out.display()),
            "training.epochs=1".into(),
        ];
        let config =
            CodiRunConfig::load(Path::new("configs/codi/tiny-cpu.yaml"), &overrides).unwrap();
        let device = Default::default();
        let built = build::<AB>(&config, &device).unwrap();
        let prep = prep_config(&config, &built.meta, built.model.lm.config());
        let problems = load_problems(
            config.data.train.as_ref().unwrap(),
            config.data.train_format,
            None,
        )
        .unwrap();
        let (examples, _) = prepare(&problems, &built.tokenizer, &prep).unwrap();
        let tokenizer = built.tokenizer.clone();
        let base_vocab = built.meta.tokens.base_vocab;
        let embed_before = built
            .model
            .lm
            .embed_tokens
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let (model, report) =
            train::<AB>(&config, built, &examples, &TrainOptions::default()).unwrap();
        assert_eq!(report.updates, 4);
        // `embeddings: new_tokens`: the base rows stay bit-identical, the added rows train.
        let embed_after = model
            .lm
            .embed_tokens
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let split = base_vocab * model.lm.config().hidden_size;
        assert_eq!(embed_before[..split], embed_after[..split]);
        assert_ne!(embed_before[split..], embed_after[split..]);
        let eval = EvalConfig {
            batch_size: 8,
            max_new_tokens: 12,
            num_latent: 6,
            probe_examples: 1,
            ..EvalConfig::default()
        };
        let subset = &examples[..10];
        let before = evaluate(
            &model.valid(),
            Task::Codi,
            &tokenizer,
            subset,
            &eval,
            |_| {},
        )
        .unwrap();
        let (reloaded, _, meta) =
            CodiModel::<CpuBackend>::load(&report.saved, &device, burn::tensor::DType::F32)
                .unwrap();
        assert_eq!(meta.task, Task::Codi);
        let after = evaluate(&reloaded, meta.task, &tokenizer, subset, &eval, |_| {}).unwrap();
        // The saved model has its LoRA merged: the same decisions, probabilities equal to rounding.
        for (a, b) in before.records.iter().zip(&after.records) {
            assert_eq!(a.answer.output, b.answer.output);
            for (pa, pb) in a.probe.iter().flatten().zip(b.probe.iter().flatten()) {
                assert_eq!(pa.0, pb.0);
                assert!((pa.1 - pb.1).abs() < 1e-5, "{pa:?} vs {pb:?}");
            }
        }
        assert_eq!(before.accuracy, after.accuracy);
        assert!(out.join("metrics.jsonl").exists() && out.join("epoch_0").exists());
        std::fs::remove_dir_all(&out).unwrap();
    });
}
