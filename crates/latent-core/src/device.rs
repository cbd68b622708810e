//! Devices and backends: `--device cpu|cuda[:N]` to a Burn device, and a way to run generic code on it.
//!
//! Burn backends are types, so code is written once as a generic job ([`BackendJob`]) and
//! [`DeviceSpec::run`] instantiates it for the backend the string names. The CPU backend is
//! [`CpuBackend`] (Burn's Flex); with the `cuda` feature, `cuda[:N]` selects [`CudaBackend`].

use std::{fmt, str::FromStr};

use burn::tensor::backend::Backend;

use crate::{CoreError, Result};

/// The default CPU backend (Burn's pure-Rust Flex backend).
pub type CpuBackend = burn::backend::Flex;

/// The CUDA backend (only with the `cuda` feature). It loads libcuda at run time.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda;

/// A parsed `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU (Flex backend).
    #[default]
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| CoreError::Device {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| bad("expected cuda:<index>, e.g. cuda:0")),
                None => Err(bad("expected cpu, cuda or cuda:<index>")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Code generic over the backend, run by [`DeviceSpec::run`] on the backend the spec selects.
///
/// Wrap `B` in `burn::backend::Autodiff<B>` inside `run` to train.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> Self::Output;
}

impl DeviceSpec {
    /// Runs `job` on this device's backend. Fails for `cuda` when built without the `cuda` feature.
    pub fn run<J: BackendJob>(self, job: J) -> Result<J::Output> {
        match self {
            Self::Cpu => Ok(job.run::<CpuBackend>(Default::default())),
            #[cfg(feature = "cuda")]
            Self::Cuda(index) => Ok(job.run::<CudaBackend>(burn::backend::cuda::CudaDevice::new(
                index,
            ))),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => Err(CoreError::Device {
                spec: self.to_string(),
                reason: "this binary was built without the `cuda` feature (rebuild with --features cuda)"
                    .into(),
            }),
        }
    }
}

/// A parsed `--devices` list (`cpu,cpu`, `cuda:0,cuda:1`): one data-parallel replica per entry
/// (see `train::data_parallel`), all on one backend. A device may repeat: the CPU backend has a
/// single device, so `cpu,cpu` runs two replicas on it (sharing its threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(Vec<DeviceSpec>);

impl FromStr for DeviceList {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| CoreError::Device {
            spec: s.to_string(),
            reason,
        };
        let mut specs = Vec::new();
        for (i, entry) in s.split(',').enumerate() {
            if entry.trim().is_empty() {
                return Err(bad(format!(
                    "entry {} is empty; expected a comma-separated list such as cpu,cpu or \
                     cuda:0,cuda:1",
                    i + 1
                )));
            }
            let spec: DeviceSpec = entry.parse().map_err(|e| match e {
                CoreError::Device { reason, .. } => {
                    bad(format!("entry {} ({:?}): {reason}", i + 1, entry.trim()))
                }
                other => other,
            })?;
            if let Some(first) = specs.first() {
                if std::mem::discriminant(first) != std::mem::discriminant(&spec) {
                    return Err(bad(format!(
                        "{first} and {spec} are on different backends; every replica of a \
                         data-parallel run uses the same one"
                    )));
                }
            }
            specs.push(spec);
        }
        Ok(Self(specs))
    }
}

impl fmt::Display for DeviceList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(DeviceSpec::to_string).collect();
        write!(f, "{}", names.join(","))
    }
}

/// Code generic over the backend, run by [`DeviceList::run`] with every device of the list.
pub trait DevicesJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` with `devices` (one per list entry, in order).
    fn run<B: Backend>(self, devices: Vec<B::Device>) -> Self::Output;
}

impl DeviceList {
    /// The entries, in order (never empty).
    pub fn specs(&self) -> &[DeviceSpec] {
        &self.0
    }

    /// Runs `job` on the list's backend with its devices. Fails for `cuda` entries when built
    /// without the `cuda` feature.
    pub fn run<J: DevicesJob>(&self, job: J) -> Result<J::Output> {
        match self.0[0] {
            DeviceSpec::Cpu => Ok(job.run::<CpuBackend>(vec![Default::default(); self.0.len()])),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(_) => {
                let devices = self
                    .0
                    .iter()
                    .map(|spec| match spec {
                        DeviceSpec::Cuda(i) => burn::backend::cuda::CudaDevice::new(*i),
                        DeviceSpec::Cpu => unreachable!("checked when parsed"),
                    })
                    .collect();
                Ok(job.run::<CudaBackend>(devices))
            }
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(CoreError::Device {
                spec: self.to_string(),
                reason: "this binary was built without the `cuda` feature (rebuild with --features cuda)"
                    .into(),
            }),
        }
    }
}

/// Parses a `--dtype` value: `f32`, `bf16` or `f16`.
pub fn parse_dtype(s: &str) -> Result<burn::tensor::DType> {
    use burn::tensor::DType;
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" | "half" => Ok(DType::F16),
        _ => Err(CoreError::Device {
            spec: s.to_string(),
            reason: "expected a dtype: f32, bf16 or f16".into(),
        }),
    }
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), or `None` where unavailable.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_strings() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        let err = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("tpu"), "{err}");
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn parses_device_lists() {
        let list: DeviceList = "cpu, cpu".parse().unwrap();
        assert_eq!(list.specs(), &[DeviceSpec::Cpu, DeviceSpec::Cpu]);
        assert_eq!(list.to_string(), "cpu,cpu");
        let list: DeviceList = "cuda:0,cuda:1".parse().unwrap();
        assert_eq!(list.specs(), &[DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]);
        assert_eq!(
            "cuda".parse::<DeviceList>().unwrap().specs(),
            &[DeviceSpec::Cuda(0)]
        );
        let err = |s: &str| s.parse::<DeviceList>().unwrap_err().to_string();
        let e = err("cpu,,cpu");
        assert!(
            e.contains("\"cpu,,cpu\"") && e.contains("entry 2 is empty"),
            "{e}"
        );
        let e = err("cuda:0,cuda:x");
        assert!(
            e.contains("entry 2 (\"cuda:x\")") && e.contains("cuda:<index>"),
            "{e}"
        );
        let e = err("cpu,cuda:0");
        assert!(
            e.contains("cpu and cuda:0 are on different backends"),
            "{e}"
        );
        assert!(err("").contains("entry 1 is empty"));
    }
}
