//! One data-parallel replica's handle on Burn's collective (`burn-collective`): registration, the
//! gradient all-reduce, small all-reduces of host numbers (logged losses, the stop flag), and the
//! abort that releases replicas blocked in a collective when another one fails. No communication
//! of our own: every exchange is a burn-collective `all_reduce`.
//!
//! burn-collective runs one collective server per process and backend type, so data-parallel
//! runs of one process take turns ([`run_lock`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorPrimitive;
use burn_collective::{
    all_reduce, finish_collective, register, reset_collective, AllReduceStrategy, CollectiveConfig,
    CollectiveError, PeerId, ReduceOperation,
};

use crate::{CoreError, Result};

/// The multi-node part of a data-parallel run: this process is one node of `num_nodes`, each
/// running the same number of local replicas, joined through burn-collective's global
/// orchestrator (websocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalCollective {
    /// Nodes (processes) in the run.
    pub num_nodes: u32,
    /// This node's index, `0..num_nodes`: its replicas are peers
    /// `node_index × devices .. (node_index + 1) × devices`; node 0's first replica logs.
    pub node_index: u32,
    /// The orchestrator, `ws://host:port` (see `examples/collective_orchestrator.rs`).
    pub orchestrator: String,
    /// How the other nodes reach this one's tensor data service, `ws://host:data_port`.
    pub node_address: String,
    /// The port this node serves tensors on (the port of `node_address`).
    pub data_port: u16,
}

/// Held for the length of a data-parallel run (see the module note).
static RUN: Mutex<()> = Mutex::new(());

/// Waits for the other data-parallel runs of this process to end.
pub(crate) fn run_lock() -> MutexGuard<'static, ()> {
    RUN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks a `ws://host:port` address (burn-communication refuses others only when it connects,
/// with no message).
fn ws_address(key: &str, value: &str) -> Result<()> {
    let ok = value
        .strip_prefix("ws://")
        .and_then(|rest| rest.rsplit_once(':'))
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidConfig {
            path: "<data parallel>".into(),
            key: key.into(),
            reason: format!("{value:?}: expected ws://host:port"),
        })
    }
}

/// The collective settings shared by every replica: `devices` local replicas (a tree all-reduce,
/// which is exact and order-independent for two), and the global part when there are nodes (a
/// tree there too: the global ring refuses tensors smaller than the node count, such as the
/// one-element stop flag).
pub(crate) fn collective_config(
    devices: usize,
    global: Option<&GlobalCollective>,
) -> Result<CollectiveConfig> {
    let config = CollectiveConfig::default()
        .with_num_devices(devices)
        .with_local_all_reduce_strategy(AllReduceStrategy::Tree(2));
    let Some(g) = global else {
        return Ok(config);
    };
    if g.num_nodes == 0 || g.node_index >= g.num_nodes {
        return Err(CoreError::InvalidConfig {
            path: "<data parallel>".into(),
            key: "node_index".into(),
            reason: format!("{} is not below num_nodes = {}", g.node_index, g.num_nodes),
        });
    }
    ws_address("orchestrator", &g.orchestrator)?;
    ws_address("node_address", &g.node_address)?;
    let unparsed = |key: &str, e: String| CoreError::InvalidConfig {
        path: "<data parallel>".into(),
        key: key.into(),
        reason: e,
    };
    Ok(config
        .with_num_nodes(g.num_nodes)
        .with_global_address(
            g.orchestrator
                .parse()
                .map_err(|e| unparsed("orchestrator", e))?,
        )
        .with_node_address(
            g.node_address
                .parse()
                .map_err(|e| unparsed("node_address", e))?,
        )
        .with_data_service_port(g.data_port)
        .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2)))
}

/// Set once a replica has failed and reset the collective; replicas that fail afterwards are
/// followers (their error is a consequence, not the cause).
#[derive(Debug, Default)]
pub(crate) struct Abort {
    raised: AtomicBool,
}

impl Abort {
    /// Whether a replica has aborted the run.
    pub(crate) fn raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Marks the run aborted, then resets backend `B`'s collective server: the operations in
    /// flight end with an error on every replica and later ones are refused, so no replica waits
    /// for one that has stopped.
    pub(crate) fn raise<B: Backend>(&self) {
        self.raised.store(true, Ordering::SeqCst);
        reset_collective::<B>();
    }
}

/// One replica: its peer id (= its rank among all replicas), the replica count and its device.
/// `B` is the inner (non-autodiff) backend, on which the collective runs.
#[derive(Debug, Clone)]
pub(crate) struct Peer<B: Backend> {
    /// Rank among all replicas of all nodes.
    pub rank: usize,
    /// Replicas in the run.
    pub peers: usize,
    /// This replica's device.
    pub device: B::Device,
    /// Set when a collective operation of this replica failed (shared by its clones: a method's
    /// own exchanges, through [`super::data_parallel::Replica`], count too).
    collective_failed: Arc<AtomicBool>,
}

impl<B: Backend> Peer<B> {
    /// Replica `rank` of `peers`, on `device`.
    pub(crate) fn new(rank: usize, peers: usize, device: B::Device) -> Self {
        Self {
            rank,
            peers,
            device,
            collective_failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a collective operation of this replica has failed (after an abort: because
    /// another replica reset the collective).
    pub(crate) fn collective_failed(&self) -> bool {
        self.collective_failed.load(Ordering::SeqCst)
    }

    fn id(&self) -> PeerId {
        PeerId::from(self.rank)
    }

    /// An error of this replica.
    pub(crate) fn error(&self, reason: impl Into<String>) -> CoreError {
        CoreError::DataParallel {
            peer: self.rank,
            device: format!("{:?}", self.device),
            reason: reason.into(),
        }
    }

    fn collective(&self, what: &str, err: CollectiveError) -> CoreError {
        self.collective_failed.store(true, Ordering::SeqCst);
        self.error(format!("{what}: burn-collective error {err:?}"))
    }

    /// Joins the collective; returns once every local replica (and every node) has joined.
    pub(crate) fn register(&self, config: &CollectiveConfig) -> Result<()> {
        register::<B>(self.id(), self.device.clone(), config.clone())
            .map_err(|e| self.collective("register", e))
    }

    /// Leaves the collective.
    pub(crate) fn finish(&self) -> Result<()> {
        finish_collective::<B>(self.id()).map_err(|e| self.collective("finish", e))
    }

    /// The element-wise sum or mean of `values` over every replica (as f32).
    pub(crate) fn all_reduce_values(
        &self,
        values: &[f64],
        op: ReduceOperation,
    ) -> Result<Vec<f64>> {
        let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let host = self.all_reduce_f32(data, op, "all-reduce of logged values")?;
        Ok(host.into_iter().map(f64::from).collect())
    }

    /// `values` reduced over every replica (each gives a vector of the same length), on the host;
    /// `what` names the exchange in an error.
    pub(crate) fn all_reduce_f32(
        &self,
        values: Vec<f32>,
        op: ReduceOperation,
        what: &str,
    ) -> Result<Vec<f32>> {
        let n = values.len();
        let tensor = Tensor::<B, 1>::from_data(TensorData::new(values, [n]), &self.device);
        let reduced = all_reduce::<B>(self.id(), tensor.into_primitive().tensor(), op)
            .map_err(|e| self.collective(what, e))?;
        let reduced = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(reduced));
        reduced
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| self.error(format!("reading the result of {what}: {e:?}")))
    }

    pub(crate) fn all_reduce_gradients<AB, M>(
        &self,
        model: &M,
        mut grads: GradientsParams,
    ) -> Result<GradientsParams>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut presence = Presence::<B> {
            grads: &grads,
            seen: Vec::new(),
            _b: std::marker::PhantomData,
        };
        model.visit(&mut presence);
        let seen = presence.seen;
        if seen.is_empty() {
            return Ok(grads);
        }
        let counts = self.all_reduce_values(&seen, ReduceOperation::Sum)?;
        model.visit(&mut ZeroFill::<B, _> {
            grads: &mut grads,
            counts: counts.into_iter(),
            device: self.device.clone(),
        });
        let mut mean = Mean {
            peer: self,
            grads: &mut grads,
            error: None,
        };
        model.visit(&mut mean);
        match mean.error {
            Some(e) => Err(self.collective("gradient all-reduce", e)),
            None => Ok(grads),
        }
    }
}

/// Replaces each gradient by its mean over the replicas, in visit order; stops at the first
/// error.
struct Mean<'a, B: Backend> {
    peer: &'a Peer<B>,
    grads: &'a mut GradientsParams,
    error: Option<CollectiveError>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Mean<'_, AB::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.error.is_some() {
            return;
        }
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(param.id) else {
            return;
        };
        let reduced = all_reduce::<AB::InnerBackend>(
            self.peer.id(),
            grad.into_primitive().tensor(),
            ReduceOperation::Mean,
        );
        match reduced {
            Ok(g) => self.grads.register::<AB::InnerBackend, D>(
                param.id,
                Tensor::from_primitive(TensorPrimitive::Float(g)),
            ),
            Err(e) => self.error = Some(e),
        }
    }
}

/// 1.0 for each float parameter (in visit order) that has a gradient, else 0.0.
struct Presence<'a, B: Backend> {
    grads: &'a GradientsParams,
    seen: Vec<f64>,
    _b: std::marker::PhantomData<B>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Presence<'_, AB::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let has = self.grads.get::<AB::InnerBackend, D>(param.id).is_some();
        self.seen.push(if has { 1.0 } else { 0.0 });
    }
}

/// Registers a zero gradient for each parameter that lacks one here but has one on another
/// replica (`counts`: replicas holding a gradient, in the same visit order as [`Presence`]).
struct ZeroFill<'a, B: Backend, I: Iterator<Item = f64>> {
    grads: &'a mut GradientsParams,
    counts: I,
    device: B::Device,
}

impl<AB: AutodiffBackend, I: Iterator<Item = f64>> ModuleVisitor<AB>
    for ZeroFill<'_, AB::InnerBackend, I>
{
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let count = self.counts.next().unwrap_or(0.0);
        if count > 0.0 && self.grads.get::<AB::InnerBackend, D>(param.id).is_none() {
            let value = param.val();
            let zeros =
                Tensor::<AB::InnerBackend, D>::zeros(value.shape(), (&self.device, value.dtype()));
            self.grads.register::<AB::InnerBackend, D>(param.id, zeros);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(index: u32, orchestrator: &str) -> GlobalCollective {
        GlobalCollective {
            num_nodes: 2,
            node_index: index,
            orchestrator: orchestrator.into(),
            node_address: "ws://10.0.0.2:3001".into(),
            data_port: 3001,
        }
    }

    #[test]
    fn global_settings_are_checked_before_any_connection() {
        assert!(collective_config(2, None).unwrap().is_valid());
        assert!(collective_config(1, Some(&node(1, "ws://10.0.0.1:3000")))
            .unwrap()
            .is_valid());
        let err = collective_config(1, Some(&node(0, "10.0.0.1:3000")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("orchestrator") && err.contains("expected ws://host:port"),
            "{err}"
        );
        let err = collective_config(1, Some(&node(2, "ws://10.0.0.1:3000")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node_index") && err.contains("num_nodes = 2"),
            "{err}"
        );
    }
}
