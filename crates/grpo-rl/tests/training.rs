//! GRPO / HRPO steps on the tiny chat model (a random Qwen2 with a real BPE tokenizer and chat
//! template): one update lowers the loss on its own batch; resume reproduces the next updates
//! exactly; the two-pass projection recomputes the stored states and its gradient agrees with finite
//! differences; dynamic sampling replaces groups without signal; equal rewards give no NaN; data
//! parallel replicas train as one device.

use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use grpo_rl::batch::{MicroBatch, Window};
use grpo_rl::config::{
    DataSection, EvalSection, GrpoRunConfig, GrpoSection, HrpoSection, LoraSection, ModelSection,
    PromptFormat, TrainingSection,
};
use grpo_rl::forward::projection_sources;
use grpo_rl::loss::{LossConfig, LossType};
use grpo_rl::model::{adamw, build, param_groups, Built};
use grpo_rl::prompt::{PromptBuilder, PromptExample};
use grpo_rl::train::{train, train_on, TrainOptions};
use grpo_rl::{GrpoStep, Reward};
use latent_core::latent::{ThinkingLm, ThinkingSource};
use latent_core::train::state_dict::module_tensors;
use latent_core::train::{GroupedOptimizer, StepIndex, StopFlag, TrainStep};
use latent_core::CpuBackend;

type AB = Autodiff<CpuBackend>;

fn tiny_chat() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../latent-core/tests/fixtures/tiny-chat")
}

/// Rewards longer completions (the tiny random model gets GSM8K's reward 0 everywhere).
struct Length;

impl Reward for Length {
    fn score(&self, completion: &str, _gold: &str) -> f32 {
        completion.len() as f32 / 40.0
    }
}

/// Rewards length for prompts whose gold answer is odd, and gives 1 to every completion of the
/// others (their groups carry no signal).
struct HalfFlat;

impl Reward for HalfFlat {
    fn score(&self, completion: &str, gold: &str) -> f32 {
        let odd = gold
            .replace(',', "")
            .trim()
            .parse::<i64>()
            .is_ok_and(|g| g % 2 != 0);
        if odd {
            completion.len() as f32 / 40.0
        } else {
            1.0
        }
    }
}

fn config(dir: &str, thinking: Option<ThinkingSource>) -> GrpoRunConfig {
    let fixture = tiny_chat();
    GrpoRunConfig {
        model: ModelSection {
            name_or_path: None,
            config: Some(fixture.join("config.json")),
            tokenizer: Some(fixture.join("tokenizer.json")),
            dtype: "f32".into(),
            chat_template: true,
            system_prompt: grpo_rl::config::SYSTEM_PROMPT.into(),
            eos_token_ids: Vec::new(),
            pad_token_id: None,
        },
        lora: LoraSection {
            r: 4,
            alpha: 8.0,
            ..LoraSection::default()
        },
        hrpo: HrpoSection {
            enabled: thinking.is_some(),
            thinking: thinking.unwrap_or_default(),
            ..HrpoSection::default()
        },
        grpo: GrpoSection {
            group_size: 3,
            prompts_per_micro_batch: 2,
            accumulation: 1,
            temperature: 1.0,
            top_k: 0,
            max_completion_length: 6,
            loss: LossConfig {
                beta: 0.04,
                ..LossConfig::default()
            },
            ..GrpoSection::default()
        },
        training: TrainingSection {
            output_dir: std::env::temp_dir()
                .join(format!("grpo-test-{dir}-{}", std::process::id())),
            epochs: 1,
            learning_rate: 1e-2,
            lr_residual_gate: 1e-2,
            lr_residual_lambda: 1e-2,
            lr_thinking_projection: 1e-2,
            weight_decay: 0.0,
            warmup_ratio: 0.0,
            schedule: latent_core::train::ScheduleKind::Constant,
            max_grad_norm: None,
            adam_beta1: 0.9,
            adam_beta2: 0.99,
            seed: 3,
            save_every_updates: 1,
            keep_last: 0,
            projection_log_every: 1,
            device: "cpu".into(),
            precision: Default::default(),
            checkpointing: false,
        },
        data: DataSection {
            train: latent_datasets::data_dir::sample("gsm8k/test_sample.jsonl"),
            format: PromptFormat::Gsm8k,
            max_train_samples: Some(6),
            eval: None,
            max_eval_samples: None,
        },
        eval: EvalSection::default(),
    }
}

fn setup(config: &GrpoRunConfig) -> (Built<AB>, Vec<PromptExample>) {
    let built = build::<AB>(config, &Default::default()).unwrap();
    let builder = PromptBuilder::new(
        built.tokenizer.clone(),
        built.tokenizer_path.clone(),
        built.template.clone(),
        &config.model.system_prompt,
    );
    let prompts = builder
        .load(
            &config.data.train,
            config.data.format,
            config.data.max_train_samples,
        )
        .unwrap();
    (built, prompts)
}

/// The first micro-batch of `window` (the test config's 2 prompts × 3 completions).
fn micro(window: &Arc<Window>, iteration: usize) -> MicroBatch {
    MicroBatch {
        window: Arc::clone(window),
        part: 0,
        iteration,
        completions: 6,
        shard: 0..6,
    }
}

fn value(t: Tensor<AB, 1>) -> f64 {
    t.into_scalar().elem()
}

#[test]
fn one_update_lowers_the_loss_on_its_own_batch() {
    for thinking in [None, Some(ThinkingSource::ProbabilityWeighted)] {
        let mut c = config("lower", thinking);
        c.grpo.num_iterations = 2;
        c.grpo.loss.beta = 0.0;
        let (built, prompts) = setup(&c);
        let mut step = GrpoStep::new(
            &c,
            &built.model,
            &prompts,
            &built.tokenizer,
            Length,
            built.eos_token_ids.clone(),
            built.pad_token_id,
        );
        let window = Arc::new(Window {
            id: 0,
            prompts: vec![0, 1],
            reserve: vec![],
        });
        let out = step
            .loss(&built.model, &micro(&window, 0), StepIndex::default())
            .unwrap();
        let adv = &step.generation().unwrap().advantages;
        assert!(adv.frac_reward_zero_std < 1.0, "rewards vary");
        let before = value(out.loss.clone());
        // Iteration 0: ratio 1, so the loss is −mean(A) = 0 up to rounding.
        assert!(before.abs() < 1e-5, "{before}");
        let grads = GradientsParams::from_grads(out.loss.backward(), &built.model);
        let mut optim =
            GroupedOptimizer::new(&built.model, &param_groups(&c), &adamw(&c), 2).unwrap();
        let updated = optim.step(0, built.model, grads);
        // Iteration 1 reuses the rollouts: the ratio against the sampling policy moved the loss down.
        let after = value(
            step.loss(&updated, &micro(&window, 1), StepIndex::default())
                .unwrap()
                .loss,
        );
        assert!(after < before - 1e-4, "{thinking:?}: {before} -> {after}");
    }
}

#[test]
fn equal_rewards_give_zero_advantages_and_a_finite_loss() {
    struct Flat;
    impl Reward for Flat {
        fn score(&self, _: &str, _: &str) -> f32 {
            1.0
        }
    }
    let c = config("flat", Some(ThinkingSource::ProbabilityWeighted));
    let (built, prompts) = setup(&c);
    let mut step = GrpoStep::new(
        &c,
        &built.model,
        &prompts,
        &built.tokenizer,
        Flat,
        built.eos_token_ids.clone(),
        built.pad_token_id,
    );
    let window = Arc::new(Window {
        id: 4,
        prompts: vec![2, 3],
        reserve: vec![],
    });
    let out = step
        .loss(&built.model, &micro(&window, 0), StepIndex::default())
        .unwrap();
    let generation = step.generation().unwrap();
    assert!(generation.advantages.values.iter().all(|&a| a == 0.0));
    assert_eq!(generation.advantages.frac_reward_zero_std, 1.0);
    let loss = value(out.loss.clone());
    assert!(loss.is_finite());
    let grads = GradientsParams::from_grads(out.loss.backward(), &built.model);
    let norm = latent_core::train::global_grad_norm::<AB, ThinkingLm<AB>>(&built.model, &grads);
    assert!(norm.is_finite(), "{norm}");
}

#[test]
fn dynamic_sampling_replaces_groups_without_signal() {
    let mut c = config("dynamic", None);
    c.data.max_train_samples = None;
    let (built, prompts) = setup(&c);
    let golds: Vec<i64> = prompts
        .iter()
        .map(|p| p.gold.replace(',', "").parse().unwrap())
        .collect();
    let even: Vec<usize> = (0..prompts.len()).filter(|&i| golds[i] % 2 == 0).collect();
    let odd: Vec<usize> = (0..prompts.len()).filter(|&i| golds[i] % 2 != 0).collect();
    assert!(
        !even.is_empty() && odd.len() >= 2,
        "the sample has both: {golds:?}"
    );
    let window = Arc::new(Window {
        id: 1,
        prompts: vec![even[0], odd[0]],
        reserve: vec![odd[1]],
    });
    for (dynamic, replaced, zero_std) in [(false, 0, 0.5), (true, 1, 0.0)] {
        c.grpo.dynamic_sampling = dynamic;
        let step = GrpoStep::new(
            &c,
            &built.model,
            &prompts,
            &built.tokenizer,
            HalfFlat,
            built.eos_token_ids.clone(),
            built.pad_token_id,
        );
        let g = step.generate(&built.model, &window).unwrap();
        assert_eq!(g.groups_replaced, replaced, "dynamic {dynamic}");
        assert_eq!(
            g.advantages.frac_reward_zero_std, zero_std,
            "dynamic {dynamic}"
        );
        assert_eq!(g.rollouts.rows, 2 * c.grpo.group_size);
    }
}

#[test]
fn two_pass_states_equal_the_stored_ones_and_their_gradient_matches_finite_differences() {
    let mut c = config("two-pass", Some(ThinkingSource::Projection));
    c.grpo.num_iterations = 2;
    c.grpo.loss.beta = 0.0;
    let (built, prompts) = setup(&c);
    let mut step = GrpoStep::new(
        &c,
        &built.model,
        &prompts,
        &built.tokenizer,
        Length,
        built.eos_token_ids.clone(),
        built.pad_token_id,
    );
    let window = Arc::new(Window {
        id: 2,
        prompts: vec![0, 1],
        reserve: vec![],
    });
    // Pass 1 on the rollout's fused inputs, projected from hidden_{t-1}: the stored states.
    let g = step.generate(&built.model, &window).unwrap();
    let inner = built.model.valid();
    let rows: Vec<usize> = (0..g.rollouts.rows).collect();
    let sub = g.rollouts.select_rows(&rows);
    let t = sub.tensors::<CpuBackend>(&Default::default());
    let sources = projection_sources(&inner, &t, &c.hrpo).unwrap();
    let states: Vec<f32> = inner
        .projection
        .as_ref()
        .unwrap()
        .forward(sources)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    let h = sub.hidden;
    let mut mixed = 0;
    for (pos, &m) in sub.thinking_mask.iter().enumerate() {
        if m {
            mixed += 1;
            for d in 0..h {
                let (a, b) = (states[pos * h + d], sub.thinking_states[pos * h + d]);
                assert!(
                    (a - b).abs() <= 1e-5,
                    "position {pos} dim {d}: recomputed {a} vs stored {b}"
                );
            }
        }
    }
    assert!(mixed > 0, "some positions were mixed");

    // The loss of the reused rollout (iteration 1) as a function of W_p.
    let loss_with = |step: &mut GrpoStep<'_, AB, Length>, model: &ThinkingLm<AB>| {
        step.loss(model, &micro(&window, 1), StepIndex::default())
            .unwrap()
            .loss
    };
    // Move W_p away from its start so the ratio is not 1 everywhere.
    let shift = |model: ThinkingLm<AB>, i: usize, eps: f32| {
        let mut model = model;
        let p = model.projection.take().unwrap();
        let w = p.weight.val().inner();
        let mut values: Vec<f32> = w.clone().into_data().convert::<f32>().into_vec().unwrap();
        values[i] += eps;
        let dims = w.dims();
        let w = Tensor::<AB, 2>::from_data(TensorData::new(values, dims), &Default::default())
            .require_grad();
        model.projection = Some(latent_core::latent::ThinkingProjection {
            weight: Param::initialized(p.weight.id, w),
        });
        model
    };
    let _ = step
        .loss(&built.model, &micro(&window, 0), StepIndex::default())
        .unwrap();
    let start = built.model.clone();
    let model = shift(start.clone(), 0, 0.05);
    let loss = loss_with(&mut step, &model);
    let grads = loss.backward();
    let grad: Vec<f32> = model
        .projection
        .as_ref()
        .unwrap()
        .weight
        .val()
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    let mut order: Vec<usize> = (0..grad.len()).collect();
    order.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
    assert!(
        grad[order[0]].abs() > 1e-4,
        "W_p gets a gradient: {}",
        grad[order[0]]
    );
    // Steps small against W_p's entries (≈ 1e-3 at initialisation), large against f32 rounding.
    let eps = 2e-4;
    for &i in order.iter().take(3) {
        let plus = value(loss_with(&mut step, &shift(model.clone(), i, eps)));
        let minus = value(loss_with(&mut step, &shift(model.clone(), i, -eps)));
        let fd = (plus - minus) / (2.0 * f64::from(eps));
        let g = f64::from(grad[i]);
        assert!(
            (fd - g).abs() <= 0.05 * g.abs() + 1e-5,
            "W_p[{i}]: finite difference {fd} vs autodiff {g}"
        );
    }
}

/// [`Length`], and raises `stop` (when given) as it scores: a stop that arrives after a window's
/// rollouts, while its completions are scored.
struct LengthRaising {
    stop: Option<StopFlag>,
}

impl Reward for LengthRaising {
    fn score(&self, completion: &str, gold: &str) -> f32 {
        if let Some(stop) = &self.stop {
            stop.request();
        }
        Length.score(completion, gold)
    }
}

#[test]
fn resume_reproduces_the_next_updates_exactly() {
    // Two stops, each resumed: one already raised when the first window's rollouts start (they
    // end at their first decoding step; `checkpoint-0` holds the state before update 0), one
    // raised while the first window is scored (the update completes; `checkpoint-1`). LoRA dropout
    // is on, so the resumed updates also need the same dropout masks.
    let config = |dir: &str| {
        let mut c = config(dir, Some(ThinkingSource::Projection));
        c.lora.dropout = 0.1;
        c
    };
    let prompts = setup(&config("resume-prompts")).1;
    let run = |c: &GrpoRunConfig, stop: Option<StopFlag>, raise: Option<StopFlag>, resume: bool| {
        let (built, _) = setup(c);
        train(
            c,
            built.model,
            &built.tokenizer,
            &prompts,
            LengthRaising { stop: raise },
            built.eos_token_ids.clone(),
            built.pad_token_id,
            &TrainOptions {
                resume,
                progress: false,
                stop,
            },
        )
    };
    let lines = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let whole = config("resume-whole");
    let _ = std::fs::remove_dir_all(&whole.training.output_dir);
    run(&whole, None, None, false).unwrap();
    let a = lines(&whole.training.output_dir);
    assert_eq!(a.len(), 3, "3 windows of 2 prompts");

    for (name, raised_before, checkpoint) in [
        ("resume-in-rollout", true, "checkpoint-0"),
        ("resume-after-rollout", false, "checkpoint-1"),
    ] {
        let c = config(name);
        let _ = std::fs::remove_dir_all(&c.training.output_dir);
        let stop = StopFlag::new();
        if raised_before {
            stop.request();
        }
        let raise = (!raised_before).then(|| stop.clone());
        let Err(err) = run(&c, Some(stop), raise, false) else {
            panic!("{name}: the run was not interrupted");
        };
        match &err {
            grpo_rl::GrpoError::Core(latent_core::CoreError::Interrupted {
                checkpoint: dir,
                ..
            }) => assert!(dir.ends_with(checkpoint), "{name}: {err}"),
            other => panic!("{name}: expected an interruption, got {other}"),
        }
        run(&c, None, None, true).unwrap();
        let b = lines(&c.training.output_dir);
        assert_eq!(b.len(), 3, "{name}");
        for (x, y) in a.iter().zip(&b) {
            for key in [
                "step",
                "loss",
                "grad_norm",
                "reward/mean",
                "loss/kl",
                "projection/mean_abs_change",
            ] {
                assert_eq!(x[key], y[key], "{name}: {key} at step {}", x["step"]);
            }
        }
        std::fs::remove_dir_all(&c.training.output_dir).unwrap();
    }
    std::fs::remove_dir_all(&whole.training.output_dir).unwrap();
}

#[test]
fn a_raised_stop_ends_the_evaluation_within_a_decoding_step() {
    let c = config("eval-stop", None);
    let (built, prompts) = setup(&c);
    let stop = StopFlag::new();
    stop.request();
    let settings = grpo_rl::eval::EvalSettings {
        batch_size: 2,
        max_new_tokens: 6,
        mix: false,
        answer_delimiter: c.hrpo.answer_delimiter.clone(),
        eos_token_ids: built.eos_token_ids.clone(),
        pad_token_id: built.pad_token_id,
        stop: Some(stop),
    };
    let mut batches = 0;
    let err = grpo_rl::eval::evaluate(
        &built.model.valid(),
        &built.tokenizer,
        &prompts,
        &settings,
        |_| batches += 1,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            grpo_rl::GrpoError::Core(latent_core::CoreError::StopRequested { .. })
        ),
        "{err}"
    );
    assert_eq!(batches, 0, "no batch finished");
}

/// Data parallel: 2 and 3 replicas (uneven shards of the 6 completions of a micro-batch, 3 groups
/// rolled out as 2 + 1 or 1 + 1 + 1) train as one device: the same rewards (the replicas' shares
/// of the rollouts, gathered, are one device's rollouts) and the same parameters within 1e-5.
/// HRPO with the two-pass projection, two micro-batches per update, two passes over each window
/// (old log-probs gathered) and the KL term (reference log-probs gathered); `dapo` and `bnpo`,
/// whose shard losses need `shard_factor`, and `grpo`.
#[test]
fn replicas_share_the_rollouts_and_train_as_one_device() {
    let cases = [
        (LossType::Dapo, 2, Some(ThinkingSource::Projection)),
        (LossType::Bnpo, 3, Some(ThinkingSource::ProbabilityWeighted)),
        (LossType::Grpo, 2, None),
    ];
    for (loss_type, replicas, thinking) in cases {
        let name = format!("dp-{loss_type:?}-{replicas}");
        let mut c = config(&name, thinking);
        c.grpo.accumulation = 2;
        c.grpo.num_iterations = 2;
        c.grpo.loss.loss_type = loss_type;
        c.training.epochs = 2;
        c.data.max_train_samples = Some(4);
        let prompts = setup(&c).1;
        let run = |devices: usize| {
            let mut c = c.clone();
            c.training.output_dir = c.training.output_dir.join(format!("devices-{devices}"));
            let _ = std::fs::remove_dir_all(&c.training.output_dir);
            let (built, _) = setup(&c);
            let (model, report) = train_on(
                &c,
                built.model,
                &built.tokenizer,
                &prompts,
                Length,
                built.eos_token_ids.clone(),
                built.pad_token_id,
                &TrainOptions::default(),
                &vec![Default::default(); devices],
            )
            .unwrap();
            std::fs::remove_dir_all(&c.training.output_dir).unwrap();
            (module_tensors(&model.valid()), report)
        };
        let (one, one_report) = run(1);
        let (many, many_report) = run(replicas);
        assert_eq!(
            one_report.updates, 4,
            "{name}: 1 window x 2 iterations x 2 epochs"
        );
        // The same rewards (logged through the replicas' f32 mean).
        let rewards = |r: &grpo_rl::train::TrainReport| -> Vec<f64> {
            r.reward_curve.iter().map(|&(_, v)| v).collect()
        };
        for (a, b) in rewards(&one_report).iter().zip(rewards(&many_report)) {
            assert!((a - b).abs() < 1e-6, "{name}: rewards {a} vs {b}");
        }
        assert_eq!(one.len(), many.len());
        let mut largest = 0.0f32;
        let mut moved = 0.0f32;
        let start = module_tensors(&setup(&c).0.model.valid());
        for (((path, a), (_, b)), (_, s)) in one.iter().zip(&many).zip(&start) {
            assert_eq!(a.shape, b.shape, "{name}: {path}");
            for ((x, y), z) in a.data.iter().zip(&b.data).zip(&s.data) {
                largest = largest.max((x - y).abs());
                moved = moved.max((x - z).abs());
            }
        }
        assert!(largest <= 1e-5, "{name}: parameters differ by {largest}");
        assert!(
            moved > 1e-3,
            "{name}: training moved no parameter ({moved})"
        );
    }
}

/// A stop raised before a data-parallel run's first rollouts ends every replica within a decoding
/// step with `checkpoint-0` (the state before the first update); the resumed two-replica run then
/// logs what an uninterrupted one does.
#[test]
fn a_stop_during_shared_rollouts_checkpoints_and_the_replicas_resume() {
    let c = config("dp-stop", Some(ThinkingSource::Projection));
    let prompts = setup(&c).1;
    let run = |c: &GrpoRunConfig, stop: Option<StopFlag>, resume: bool| {
        let (built, _) = setup(c);
        train_on(
            c,
            built.model,
            &built.tokenizer,
            &prompts,
            Length,
            built.eos_token_ids.clone(),
            built.pad_token_id,
            &TrainOptions {
                resume,
                progress: false,
                stop,
            },
            &[Default::default(), Default::default()],
        )
    };
    let metrics = |c: &GrpoRunConfig| -> Vec<serde_json::Value> {
        std::fs::read_to_string(c.training.output_dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut whole = c.clone();
    whole.training.output_dir = c.training.output_dir.join("whole");
    let _ = std::fs::remove_dir_all(&c.training.output_dir);
    run(&whole, None, false).unwrap();
    let stop = StopFlag::new();
    stop.request();
    match run(&c, Some(stop), false) {
        Err(grpo_rl::GrpoError::Core(latent_core::CoreError::Interrupted {
            checkpoint, ..
        })) => assert!(
            checkpoint.ends_with("checkpoint-0"),
            "{}",
            checkpoint.display()
        ),
        Err(other) => panic!("expected an interruption, got {other}"),
        Ok(_) => panic!("the run was not interrupted"),
    }
    run(&c, None, true).unwrap();
    let (a, b) = (metrics(&whole), metrics(&c));
    assert_eq!(a.len(), 3);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for key in ["step", "loss", "grad_norm", "reward/mean", "loss/kl"] {
            assert_eq!(x[key], y[key], "{key} at step {}", x["step"]);
        }
    }
    std::fs::remove_dir_all(&c.training.output_dir).unwrap();
}
