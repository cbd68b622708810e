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
}
