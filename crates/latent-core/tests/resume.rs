//! Resume that holds for real runs: a `CausalLm` (the tiny Llama fixture) with LoRA adapters and
//! LoRA dropout, next-token cross-entropy on batches shuffled per epoch from a seed, a cosine
//! schedule with warm-up and accumulation with a partial last window. A run interrupted after a
//! periodic `checkpoint-N`, or right after an `epoch_K`, and resumed in a fresh model and optimizer
//! (`CheckpointPolicy::latest`) ends with bit-identical parameters. Also: the LoRA-only
//! `model.safetensors`, and the checks that refuse a checkpoint of another schedule or model.

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::prelude::*;
use common::{fixture_dir, load_model_on};
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use latent_core::lora::LoraConfig;
use latent_core::train::state_dict::module_tensors;
use latent_core::train::weights::{FROZEN_KEY, PARAMETERS_KEY};
use latent_core::train::{
    load_checkpoint, total_updates, train, AdamWSettings, CheckpointPolicy, GroupedOptimizer,
    LoopConfig, ParamGroupConfig, Position, ScheduleKind, StepIndex, StepLoss, TrainStep,
    TrainingState, UpdateRecord,
};
use latent_core::{seed_backend, CausalLm, CoreError, CpuBackend, LmInput};

type AB = Autodiff<CpuBackend>;

const EPOCHS: usize = 3;
const ACCUMULATION: usize = 2;
const SEQUENCES: usize = 10;
const PER_BATCH: usize = 2;
const SEED: u64 = 42;

/// Next-token cross-entropy on `[batch, seq]` ids.
struct NextToken;

impl TrainStep<AB, CausalLm<AB>> for NextToken {
    type Batch = Tensor<AB, 2, Int>;
    fn loss(
        &mut self,
        model: &CausalLm<AB>,
        ids: &Self::Batch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        let [b, s] = ids.dims();
        let logits = model.forward(LmInput::ids(ids.clone()))?.logits;
        let v = logits.dims()[2];
        let logits = logits.slice([0..b, 0..s - 1]).reshape([b * (s - 1), v]);
        let targets = ids.clone().slice([0..b, 1..s]).reshape([b * (s - 1)]);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets);
        Ok(StepLoss {
            loss,
            terms: Vec::new(),
        })
    }
}

/// The fixture's base weights. Built under the backend generator's lock: building draws initial
/// values (then replaced by the fixture's), and a draw on another thread in the middle of a
/// micro-batch's locked section would change its dropout masks.
fn base_model() -> CausalLm<AB> {
    let _rng = seed_backend::<AB>(&Default::default(), 0);
    load_model_on::<AB>(&fixture_dir("llama"))
}

/// The fixture's base weights with fresh adapters (rank 4 on q/v, dropout 0.3) drawn from
/// `lora_seed`; everything else frozen.
fn lora_model(lora_seed: u64) -> CausalLm<AB> {
    let _rng = seed_backend::<AB>(&Default::default(), lora_seed);
    let base = base_model();
    let mut lora = LoraConfig::new(4, 8.0, &["q_proj", "v_proj"]);
    lora.lora_dropout = 0.3;
    base.with_lora(&lora).unwrap()
}

fn groups() -> Vec<ParamGroupConfig> {
    vec![ParamGroupConfig {
        name: "adapters".into(),
        prefixes: vec![],
        lr: 2e-2,
        weight_decay: 0.01,
        schedule: ScheduleKind::Cosine,
        warmup_ratio: 0.2,
    }]
}

fn optimizer(model: &CausalLm<AB>, epochs: usize) -> GroupedOptimizer<AB, CausalLm<AB>> {
    let total = total_updates(epochs, SEQUENCES / PER_BATCH, ACCUMULATION);
    GroupedOptimizer::new(model, &groups(), &AdamWSettings::default(), total).unwrap()
}

/// The micro-batches of `epoch`: the sequences in an order shuffled from `SEED + epoch`.
fn epoch_batches(epoch: usize) -> Vec<Tensor<AB, 2, Int>> {
    let mut order: Vec<usize> = (0..SEQUENCES).collect();
    let mut state = SEED
        .wrapping_add(epoch as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        | 1;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
        .chunks(PER_BATCH)
        .map(|rows| {
            let ids: Vec<i64> = rows
                .iter()
                .flat_map(|&r| (0..8).map(move |j| ((r * 7 + j * j * 3 + 5) % 96) as i64))
                .collect();
            Tensor::from_data(TensorData::new(ids, [rows.len(), 8]), &Default::default())
        })
        .collect()
}

fn loop_config(start: Position, seed: u64) -> LoopConfig {
    LoopConfig {
        epochs: EPOCHS,
        accumulation: ACCUMULATION,
        max_grad_norm: Some(1.0),
        start,
        seed,
        precision: Default::default(),
    }
}

/// Every parameter (adapters and frozen base) as raw f32 bits, by path.
fn bits(model: &CausalLm<AB>) -> Vec<(String, Vec<u32>)> {
    module_tensors(model)
        .into_iter()
        .map(|(k, t)| (k, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn curve(records: &[UpdateRecord]) -> Vec<(usize, u64, u64)> {
    records
        .iter()
        .map(|r| (r.update, r.loss.to_bits(), r.grad_norm.to_bits()))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-core-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

/// An uninterrupted run with dropout seed `seed`: its final parameters and update records.
fn uninterrupted(seed: u64) -> (Vec<(String, Vec<u32>)>, Vec<UpdateRecord>) {
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS);
    let (model, records) = train(
        model,
        &mut NextToken,
        epoch_batches,
        &mut optim,
        &loop_config(Position::default(), seed),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    (bits(&model), records)
}

/// The same run under `policy`, "killed" after update `kill_after` (the callback fails there as a
/// dying process would); returns its records.
fn run_until_killed(policy: &CheckpointPolicy, kill_after: usize) -> Vec<UpdateRecord> {
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS);
    let mut seen = Vec::new();
    let err = train(
        model,
        &mut NextToken,
        epoch_batches,
        &mut optim,
        &loop_config(Position::default(), SEED),
        |m, o, r, position| {
            seen.push(r.clone());
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::json!({"data_seed": SEED}),
            };
            policy.after_update(m, o, &state, &serde_json::json!({}), None)?;
            if position.global_step == kill_after {
                return Err(CoreError::NonFinite("simulated kill".into()));
            }
            Ok(())
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("simulated kill"), "{err}");
    seen
}

/// A fresh process resuming from `dir`: new adapters (another seed, so nothing matches by
/// chance), new optimizer, everything restored from the checkpoint.
fn resume(dir: &Path) -> (Vec<(String, Vec<u32>)>, Vec<UpdateRecord>) {
    let model = lora_model(99);
    let mut optim = optimizer(&model, EPOCHS);
    let (model, state) = load_checkpoint(dir, model, &mut optim).unwrap();
    assert_eq!(state.extra["data_seed"], SEED);
    let (model, records) = train(
        model,
        &mut NextToken,
        epoch_batches,
        &mut optim,
        &loop_config(state.position, SEED),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    (bits(&model), records)
}

fn assert_same_run(
    (full_bits, full): &(Vec<(String, Vec<u32>)>, Vec<UpdateRecord>),
    first: &[UpdateRecord],
    (resumed_bits, rest): &(Vec<(String, Vec<u32>)>, Vec<UpdateRecord>),
) {
    let mut joined = first.to_vec();
    joined.extend(rest.iter().cloned());
    assert_eq!(
        curve(&joined),
        curve(full),
        "loss / gradient-norm bits differ"
    );
    assert_eq!(full_bits.len(), resumed_bits.len());
    for ((k, a), (_, b)) in full_bits.iter().zip(resumed_bits) {
        assert!(a == b, "{k}: parameter bits differ after resume");
    }
}

#[test]
fn resuming_from_a_periodic_checkpoint_is_bit_identical() {
    let dir = temp_dir("resume-periodic");
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 2,
        keep_last: 2,
        per_epoch: true,
    };
    let full = uninterrupted(SEED);
    assert_eq!(full.1.len(), 9, "3 epochs of windows [2, 2, 1]");
    // Killed after update 5 (mid-epoch 1): checkpoint-4 (epoch 1, next micro-batch 2) and epoch_0
    // (step 3) exist; the newest is checkpoint-4.
    let first = run_until_killed(&policy, 5);
    let latest = policy.latest().unwrap().unwrap();
    assert_eq!(latest, dir.join("checkpoint-4"));
    assert!(dir.join("epoch_0").is_dir());
    let resumed = resume(&latest);
    assert_same_run(&full, &first[..4], &resumed);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_from_an_epoch_checkpoint_is_bit_identical() {
    let dir = temp_dir("resume-epoch");
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 2,
        keep_last: 0,
        per_epoch: true,
    };
    let full = uninterrupted(SEED);
    // Killed right after the end of epoch 0 (update 3): checkpoint-2 and epoch_0 (step 3) exist;
    // latest() must pick epoch_0, the newer one.
    let first = run_until_killed(&policy, 3);
    assert!(dir.join("checkpoint-2").is_dir());
    let latest = policy.latest().unwrap().unwrap();
    assert_eq!(latest, dir.join("epoch_0"));
    let resumed = resume(&latest);
    assert_same_run(&full, &first[..3], &resumed);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dropout_masks_follow_the_run_seed() {
    // The resume tests would pass vacuously if dropout did not reach the gradients: another run
    // seed draws other masks and ends elsewhere.
    assert_ne!(uninterrupted(SEED + 1).0, uninterrupted(SEED).0);
}

/// A checkpoint of the LoRA run after `updates` updates, in `dir/checkpoint-<updates>`.
fn lora_checkpoint(dir: &Path, updates: usize) -> (PathBuf, CausalLm<AB>) {
    let policy = CheckpointPolicy {
        dir: dir.to_path_buf(),
        every_updates: updates,
        keep_last: 0,
        per_epoch: false,
    };
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS);
    let mut kept = None;
    let _ = train(
        model,
        &mut NextToken,
        epoch_batches,
        &mut optim,
        &loop_config(Position::default(), SEED),
        |m, o, _, position| {
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::Value::Null,
            };
            policy.after_update(m, o, &state, &serde_json::json!({}), None)?;
            if position.global_step == updates {
                kept = Some(m.clone());
                return Err(CoreError::NonFinite("stop here".into()));
            }
            Ok(())
        },
    );
    (
        dir.join(format!("checkpoint-{updates}")),
        kept.expect("reached"),
    )
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn lora_checkpoints_hold_only_the_trainable_parameters() {
    let dir = temp_dir("resume-lora-only");
    let (checkpoint, trained) = lora_checkpoint(&dir, 2);
    let weights = checkpoint.join("model.safetensors");
    let file = Checkpoint::open(std::slice::from_ref(&weights)).unwrap();
    assert_eq!(
        file.metadata(PARAMETERS_KEY).unwrap().as_deref(),
        Some("trainable")
    );
    let mut saved: Vec<&str> = file.keys().collect();
    saved.sort();
    let mut adapters: Vec<String> = module_tensors(&trained)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("lora_"))
        .collect();
    adapters.sort();
    assert_eq!(saved, adapters, "exactly the adapters");
    assert_eq!(adapters.len(), 8, "A and B of q/v in 2 layers");
    let frozen: serde_json::Value =
        serde_json::from_str(&file.metadata(FROZEN_KEY).unwrap().unwrap()).unwrap();
    assert_eq!(frozen["embed_tokens.weight"], serde_json::json!([96, 32]));

    // Sizes: this file against the whole model in f32 (what every checkpoint held before).
    let full = dir.join("full_model.safetensors");
    write_safetensors(&full, &module_tensors(&trained), SaveDtype::F32).unwrap();
    let checkpoint_total: u64 = std::fs::read_dir(&checkpoint)
        .unwrap()
        .map(|e| file_size(&e.unwrap().path()))
        .sum();
    let (lora_bytes, full_bytes) = (file_size(&weights), file_size(&full));
    println!(
        "tiny llama + LoRA r=4 q/v: model.safetensors {lora_bytes} bytes (all parameters in f32: \
         {full_bytes} bytes); checkpoint directory {checkpoint_total} bytes (with the full model: {} bytes)",
        checkpoint_total - lora_bytes + full_bytes
    );
    assert!(lora_bytes * 5 < full_bytes);

    // A fresh model (base from the fixture, new adapters) restored from it equals the trained one.
    let model = lora_model(99);
    let mut optim = optimizer(&model, EPOCHS);
    let (restored, _) = load_checkpoint(&checkpoint, model, &mut optim).unwrap();
    assert_eq!(bits(&restored), bits(&trained));
    // A file without the metadata (as written before it existed) holds every parameter.
    let restored = latent_core::train::load_training_weights(&full, lora_model(99)).unwrap();
    assert_eq!(bits(&restored), bits(&trained));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_lora_checkpoint_refuses_a_model_that_trains_other_parameters() {
    let dir = temp_dir("resume-lora-mismatch");
    let (checkpoint, _) = lora_checkpoint(&dir, 1);
    let weights = checkpoint.join("model.safetensors");
    // No adapters: the saved adapter tensors have no parameter to go to.
    let plain = base_model();
    let err = latent_core::train::load_training_weights(&weights, plain).unwrap_err();
    match &err {
        CoreError::ResumeMismatch { path, key, .. } => {
            assert_eq!(path, &weights);
            assert!(
                key.contains("lora_") || key == "embed_tokens.weight",
                "{err}"
            );
        }
        other => panic!("expected a resume mismatch, got {other}"),
    }
    // Adapters, but the embeddings trainable too: the checkpoint froze (and did not save) them.
    let mut model = lora_model(5);
    model.embed_tokens.weight = model.embed_tokens.weight.clone().set_require_grad(true);
    let err = latent_core::train::load_training_weights(&weights, model).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("embed_tokens.weight") && text.contains("model.safetensors"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_under_another_schedule_is_refused_naming_scheduler_json() {
    let dir = temp_dir("resume-schedule");
    let (checkpoint, _) = lora_checkpoint(&dir, 2);
    // Another number of epochs: the cosine schedule would spread over more updates.
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS + 1);
    let err = load_checkpoint(&checkpoint, model, &mut optim).unwrap_err();
    match &err {
        CoreError::ResumeMismatch {
            path,
            key,
            checkpoint: had,
            run,
        } => {
            assert_eq!(path, &checkpoint.join("scheduler.json"));
            assert_eq!(key, "schedules.adapters");
            // The first update whose rate differs, the ones already trained included.
            assert!(
                had.contains("at update 1 ") && had.ends_with("9 updates)"),
                "{had}"
            );
            assert!(run.ends_with("12 updates)"), "{run}");
        }
        other => panic!("expected a schedule mismatch, got {other}"),
    }
    // Another peak learning rate.
    let model = lora_model(5);
    let total = total_updates(EPOCHS, SEQUENCES / PER_BATCH, ACCUMULATION);
    let mut other = groups();
    other[0].lr = 1e-3;
    let mut optim =
        GroupedOptimizer::new(&model, &other, &AdamWSettings::default(), total).unwrap();
    let err = load_checkpoint(&checkpoint, model, &mut optim).unwrap_err();
    assert!(err.to_string().contains("peak 2e-2"), "{err}");
    assert!(err.to_string().contains("peak 1e-3"), "{err}");
    // A scheduler.json of an earlier version (no schedules): checked through its next lr.
    let file = checkpoint.join("scheduler.json");
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    saved.as_object_mut().unwrap().remove("schedules");
    std::fs::write(&file, saved.to_string()).unwrap();
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS);
    load_checkpoint(&checkpoint, model, &mut optim).unwrap();
    let model = lora_model(5);
    let mut optim = optimizer(&model, EPOCHS + 1);
    let err = load_checkpoint(&checkpoint, model, &mut optim).unwrap_err();
    assert!(err.to_string().contains("next_lr.adapters"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
