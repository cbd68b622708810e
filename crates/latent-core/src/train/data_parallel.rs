//! Data-parallel training on Burn's collective: one model replica per device, each on its own
//! thread running the shared loop ([`super::train`]) on its shard of every micro-batch; the
//! accumulated gradients are all-reduced (mean) before the shared clipping and optimizer step, so
//! every replica applies the same update and the replicas stay identical. The first replica logs
//! and saves (the caller's `on_update` runs on it, on the calling thread).
//!
//! Each shard's loss is the mean over its examples, scaled by `replicas × shard / micro-batch`
//! (1 when the micro-batch splits evenly, 0 for a replica left without examples), so the mean of
//! the replicas' gradients is the gradient of the mean loss of the whole micro-batch, as on one
//! device. The logged loss and terms are the replicas' mean, i.e. those of the whole micro-batch.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_collective::ReduceOperation;

use super::checkpoint::Position;
use super::collective::{collective_config, run_lock, Abort, Peer};
use super::groups::GroupedOptimizer;
use super::replica::Replica;
use super::shard::{shard_range, Shard};
use super::trainer::{train, LoopConfig, StepIndex, StepLoss, TrainStep, UpdateRecord};
use crate::Result;

pub use super::collective::GlobalCollective;

/// Where the replicas of a data-parallel run live.
#[derive(Debug, Clone, PartialEq)]
pub struct DataParallel<D> {
    /// One replica per entry, on this process (a device may repeat: the CPU backend has one).
    pub devices: Vec<D>,
    /// `Some` when this process is one node of several (see [`GlobalCollective`]).
    pub global: Option<GlobalCollective>,
}

impl<D> DataParallel<D> {
    /// One process, one replica per device.
    pub fn local(devices: Vec<D>) -> Self {
        Self {
            devices,
            global: None,
        }
    }

    /// Replicas in the whole run (every node runs as many as this one).
    pub fn replicas(&self) -> usize {
        let nodes = self.global.as_ref().map_or(1, |g| g.num_nodes as usize);
        self.devices.len() * nodes
    }

    /// Whether this process logs and saves: it holds the run's first replica.
    pub fn is_logging_node(&self) -> bool {
        self.global.as_ref().is_none_or(|g| g.node_index == 0)
    }
}

/// [`super::train`] on every replica of `parallel`, from `model` and `optimizer` (fresh, or
/// restored by `load_checkpoint`; the other replicas start from forks and clones of them).
///
/// `make_step(rank)` builds each replica's loss (on its thread); `data(epoch)` gives the whole
/// micro-batches of an epoch, the same on every replica (a function of the epoch, as for
/// `train`), and each replica keeps its [`Shard`] of each. On the logging node `on_update` sees
/// every update with the first replica's model and optimizer and the replicas' mean loss; an
/// error it returns (a Ctrl-C stop, a failed save) ends every replica after that update. Returns
/// the first replica's model (on `parallel.devices[0]`) and the updates as logged.
///
/// Parameters not yet initialised (Burn initialises lazily, at first use) are initialised here,
/// once, before the replicas are made: seed them beforehand (or initialise them under the seed,
/// as `latent_prm::train::build_model` does) for a reproducible run.
///
/// With a single replica in the run this is `train` itself, on `model` as given. A micro-batch
/// with fewer examples than replicas (a last partial one) leaves some replicas without examples:
/// they contribute a zero gradient. An error on one replica (a NaN loss on its shard, a failed
/// shard) releases the others from the collective and is the error returned; on several nodes,
/// the other nodes' replicas are not released (burn-collective has no abort across nodes) and
/// must be stopped by hand.
#[allow(clippy::too_many_arguments)]
pub fn train_data_parallel<B, M, S, D, I>(
    parallel: &DataParallel<B::Device>,
    model: M,
    make_step: impl Fn(usize) -> S + Sync,
    data: D,
    optimizer: &mut GroupedOptimizer<B, M>,
    config: &LoopConfig,
    mut on_update: impl FnMut(&M, &GroupedOptimizer<B, M>, &UpdateRecord, Position) -> Result<()>,
) -> Result<(M, Vec<UpdateRecord>)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: TrainStep<B, M>,
    S::Batch: Shard<B>,
    D: Fn(usize) -> I + Sync,
    I: IntoIterator<Item = S::Batch>,
    I::IntoIter: ExactSizeIterator,
{
    let local = parallel.devices.len();
    let peers = parallel.replicas();
    let first_rank = parallel
        .global
        .as_ref()
        .map_or(0, |g| g.node_index as usize * local);
    if local == 0 {
        return Err(crate::CoreError::Device {
            spec: String::new(),
            reason: "data-parallel training needs at least one device".into(),
        });
    }
    if peers == 1 {
        return train(model, &mut make_step(0), data, optimizer, config, on_update);
    }
    let peer =
        |i: usize| Peer::<B::InnerBackend>::new(first_rank + i, peers, parallel.devices[i].clone());
    let collective = collective_config(local, parallel.global.as_ref())?;
    let logs = parallel.is_logging_node();
    let _turn = run_lock();
    // Forget what an earlier aborted run may have left in this process's collective server.
    burn_collective::reset_collective::<B::InnerBackend>();
    let abort = Abort::default();
    // Burn initialises parameters lazily and a clone of an uninitialised parameter initialises
    // on its own: initialise them once (forking does), so every replica starts from these values.
    let model = model.fork(&parallel.devices[0]);
    let replicas: Vec<(M, GroupedOptimizer<B, M>)> = (1..local)
        .map(|_| (model.clone(), optimizer.clone()))
        .collect();
    let (first, others) = std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .into_iter()
            .enumerate()
            .map(|(i, (model, mut optimizer))| {
                let (peer, abort, collective) = (peer(i + 1), &abort, &collective);
                let (make_step, data) = (&make_step, &data);
                scope.spawn(move || {
                    let run = || {
                        run_replica(
                            &peer,
                            collective,
                            model,
                            make_step(i + 1),
                            data,
                            &mut optimizer,
                            config,
                            None::<&mut NoLog<B, M>>,
                        )
                    };
                    let outcome = catch(abort, &peer, run);
                    settle(abort, &peer, outcome).map(|_| ())
                })
            })
            .collect();
        let first_peer = peer(0);
        let run = || {
            run_replica(
                &first_peer,
                &collective,
                model,
                make_step(0),
                &data,
                optimizer,
                config,
                logs.then_some(&mut on_update),
            )
        };
        let outcome = catch(&abort, &first_peer, run);
        let first = settle(&abort, &first_peer, outcome);
        let others: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(Ending::Panicked))
            .collect();
        (first, others)
    });
    pick(first, others)
}

type NoLog<B, M> = fn(&M, &GroupedOptimizer<B, M>, &UpdateRecord, Position) -> Result<()>;

/// How a replica ended.
enum Ending<T> {
    /// It finished the run.
    Done(T),
    /// It failed first (the cause).
    Failed(crate::CoreError),
    /// It stopped because another replica failed or the logging replica stopped the run.
    Followed(crate::CoreError),
    /// It panicked (re-raised once every replica has ended).
    Panicked(Box<dyn std::any::Any + Send>),
}

impl<T> Ending<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Ending<U> {
        match self {
            Ending::Done(t) => Ending::Done(f(t)),
            Ending::Failed(e) => Ending::Failed(e),
            Ending::Followed(e) => Ending::Followed(e),
            Ending::Panicked(p) => Ending::Panicked(p),
        }
    }
}

/// The outcome of the run: the first replica's result, else the cause of the failure (a panic
/// first, then the lowest-ranked replica that failed on its own, then any error).
fn pick<T>(first: Ending<T>, others: Vec<Ending<()>>) -> Result<T> {
    let mut endings: Vec<Ending<Option<T>>> = vec![first.map(Some)];
    endings.extend(others.into_iter().map(|e| e.map(|_| None)));
    if let Some(i) = endings
        .iter()
        .position(|e| matches!(e, Ending::Panicked(_)))
    {
        if let Ending::Panicked(p) = endings.swap_remove(i) {
            std::panic::resume_unwind(p);
        }
    }
    let mut followed = None;
    let mut done = None;
    for ending in endings {
        match ending {
            Ending::Failed(e) => return Err(e),
            Ending::Followed(e) => {
                followed.get_or_insert(e);
            }
            Ending::Done(Some(t)) => done = Some(t),
            Ending::Done(None) | Ending::Panicked(_) => {}
        }
    }
    match (followed, done) {
        (Some(e), _) => Err(e),
        (None, Some(t)) => Ok(t),
        (None, None) => unreachable!("the first replica always ends"),
    }
}

/// What a replica's run returned, or its panic.
type Outcome<T> = std::thread::Result<Result<T>>;

/// Runs one replica (`_peer` names the backend whose collective a panic resets); a panic releases
/// the other replicas from the collective first.
fn catch<B: Backend, T>(
    abort: &Abort,
    _peer: &Peer<B>,
    run: impl FnOnce() -> Result<T>,
) -> Outcome<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).inspect_err(|_| abort.raise::<B>())
}

/// Classifies a replica's end: a replica whose collective operation failed after another one
/// aborted the run, or that stopped on the logging replica's request, follows; any other error
/// is a cause, and the first cause releases the other replicas.
fn settle<B: Backend, T>(abort: &Abort, peer: &Peer<B>, outcome: Outcome<T>) -> Ending<T> {
    match outcome {
        Err(panic) => Ending::Panicked(panic),
        Ok(Ok(t)) => Ending::Done(t),
        Ok(Err(e)) if is_follow(&e) || (abort.raised() && peer.collective_failed()) => {
            Ending::Followed(e)
        }
        Ok(Err(e)) => {
            abort.raise::<B>();
            Ending::Failed(e)
        }
    }
}

/// The reason given by replicas that stop because the logging replica stopped the run.
const STOPPED_BY_LOGGER: &str = "the logging replica (peer 0) stopped the run after this update";

fn is_follow(e: &crate::CoreError) -> bool {
    matches!(e, crate::CoreError::DataParallel { reason, .. } if reason == STOPPED_BY_LOGGER)
}

/// One replica: joins the collective, trains its fork of `model` with `step` on its shards,
/// leaves the collective. `on_update` is given on the logging replica only.
#[allow(clippy::too_many_arguments)]
fn run_replica<B, M, S, D, I, U>(
    peer: &Peer<B::InnerBackend>,
    collective: &burn_collective::CollectiveConfig,
    model: M,
    step: S,
    data: &D,
    optimizer: &mut GroupedOptimizer<B, M>,
    config: &LoopConfig,
    mut on_update: Option<&mut U>,
) -> Result<(M, Vec<UpdateRecord>)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: TrainStep<B, M>,
    S::Batch: Shard<B>,
    D: Fn(usize) -> I,
    I: IntoIterator<Item = S::Batch>,
    I::IntoIter: ExactSizeIterator,
    U: FnMut(&M, &GroupedOptimizer<B, M>, &UpdateRecord, Position) -> Result<()>,
{
    peer.register(collective)?;
    let model = model.fork(&peer.device);
    // Each replica draws its own dropout masks (rank 0 those of a one-device run), still a
    // function of the run seed, so a resumed run draws the same ones.
    let config = &LoopConfig {
        seed: config
            .seed
            .wrapping_add((peer.rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        ..config.clone()
    };
    let mut step = ReplicaStep { inner: step, peer };
    step.inner.join_replicas(Replica::new(peer.clone()));
    let mut logged = Vec::new();
    let (model, _) = train(
        model,
        &mut step,
        data,
        optimizer,
        config,
        |model, optimizer, record, position| {
            let record = mean_record(peer, record)?;
            let outcome = match on_update.as_mut() {
                Some(f) => f(model, optimizer, &record, position),
                None => Ok(()),
            };
            let failed = f64::from(u8::from(outcome.is_err()));
            let stops = peer.all_reduce_values(&[failed], ReduceOperation::Sum)?[0];
            logged.push(record);
            outcome?;
            if stops > 0.0 {
                return Err(peer.error(STOPPED_BY_LOGGER));
            }
            Ok(())
        },
    )?;
    peer.finish()?;
    Ok((model, logged))
}

/// `record` with its loss and terms replaced by their mean over the replicas.
fn mean_record<B: Backend>(peer: &Peer<B>, record: &UpdateRecord) -> Result<UpdateRecord> {
    let mut values = vec![record.loss];
    values.extend(record.terms.iter().map(|(_, v)| *v));
    let mean = peer.all_reduce_values(&values, ReduceOperation::Mean)?;
    let mut out = record.clone();
    out.loss = mean[0];
    for ((_, v), m) in out.terms.iter_mut().zip(&mean[1..]) {
        *v = *m;
    }
    Ok(out)
}

/// A replica's loss: its shard of each micro-batch (weighted so the replicas' mean gradient is
/// the whole micro-batch's), and the gradient all-reduce before clipping.
struct ReplicaStep<'a, S, B: Backend> {
    inner: S,
    peer: &'a Peer<B>,
}

impl<AB, M, S> TrainStep<AB, M> for ReplicaStep<'_, S, AB::InnerBackend>
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
    S: TrainStep<AB, M>,
    S::Batch: Shard<AB>,
{
    type Batch = S::Batch;

    fn loss(&mut self, model: &M, batch: &S::Batch, at: StepIndex) -> Result<StepLoss<AB>> {
        let units = batch.units();
        let range = shard_range(units, self.peer.rank, self.peer.peers)
            .map_err(|e| self.peer.error(e.to_string()))?;
        let weight = (self.peer.peers * range.len()) as f64 / units as f64;
        // A replica left without examples (fewer than replicas) runs the last one at weight 0:
        // a zero gradient and zero terms of the right names, so the all-reduces still match.
        let range = if range.is_empty() {
            units - 1..units
        } else {
            range
        };
        let shard = batch
            .shard(range, &self.peer.device)
            .map_err(|e| self.peer.error(e.to_string()))?;
        let mut out = self.inner.loss(model, &shard, at)?;
        if weight != 1.0 {
            out.loss = out.loss.mul_scalar(weight);
            for (_, v) in &mut out.terms {
                *v *= weight;
            }
        }
        Ok(out)
    }

    fn prepare(&mut self, model: &M, batch: &S::Batch, at: StepIndex) -> Result<()> {
        self.inner.prepare(model, batch, at)
    }

    fn adjust_gradients(&mut self, model: &M, grads: &mut GradientsParams) {
        self.inner.adjust_gradients(model, grads);
    }

    fn sync_gradients(&mut self, model: &M, grads: GradientsParams) -> Result<GradientsParams> {
        let grads = self.inner.sync_gradients(model, grads)?;
        self.peer.all_reduce_gradients::<AB, M>(model, grads)
    }
}
