//! Configuration from environment variables (trimmed, then parsed by `str::parse`), with defaults derived from
//! the container's CPU limit, logged once at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub const DEFAULT_PORT: u16 = 8082;
pub const DEFAULT_MODEL_DIR: &str = "/opt/model";
pub const DEFAULT_ORT_DYLIB_PATH: &str = "/opt/onnxruntime/libonnxruntime.so";
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 30.0;
/// `REQUEST_TIMEOUT_S` may be at most a day.
pub const MAX_REQUEST_TIMEOUT_S: f64 = 86_400.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub model_dir: PathBuf,
    pub port: u16,
    /// actix-web workers, and inference threads (one ONNX Runtime session each).
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    pub cpu_limit: f64,
    pub max_body_bytes: u64,
    pub max_pixels: u64,
    /// Seconds a request's processing (parse, decode, inference) may take before it is answered 504.
    pub request_timeout_s: f64,
    pub ort_dylib_path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Read the settings from `env` (a lookup such as `std::env::var`), the CPU limit from `cgroup_root` and the
    /// affinity mask.
    pub fn from_env(env: impl Fn(&str) -> Option<String>, cgroup_root: &Path) -> Result<Settings, ConfigError> {
        let cpus = cpu_limit(cgroup_root, affinity_cpus());
        Self::from_env_with_cpus(env, cpus)
    }

    pub fn from_env_with_cpus(env: impl Fn(&str) -> Option<String>, cpus: f64) -> Result<Settings, ConfigError> {
        // One worker per whole CPU, one inference thread each: no oversubscription under the limit.
        let workers = int_env(&env, "WORKERS", (cpus.floor() as u64).max(1), 1, 1024)? as usize;
        let threads = int_env(&env, "THREADS", ((cpus / workers as f64).floor() as u64).max(1), 1, 1024)? as usize;
        let path = |name: &str, default: &str| {
            PathBuf::from(env(name).filter(|value| !value.is_empty()).unwrap_or_else(|| default.to_string()))
        };
        Ok(Settings {
            model_dir: path("MODEL_DIR", DEFAULT_MODEL_DIR),
            port: int_env(&env, "PORT", u64::from(DEFAULT_PORT), 1, 65_535)? as u16,
            workers,
            threads,
            cpu_limit: (cpus * 1000.0).round() / 1000.0,
            max_body_bytes: int_env(&env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1, u64::from(u32::MAX))?,
            max_pixels: int_env(&env, "MAX_PIXELS", DEFAULT_MAX_PIXELS, 1, u64::MAX)?,
            request_timeout_s: request_timeout_s(&env)?,
            ort_dylib_path: path("ORT_DYLIB_PATH", DEFAULT_ORT_DYLIB_PATH),
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_s)
    }

    /// The one JSON line logged at start.
    pub fn describe(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            service: &'a str,
            config: &'a Settings,
        }
        serde_json::to_string(&Line { service: crate::SERVICE_NAME, config: self }).expect("settings serialize")
    }
}

/// The value of `name` in `env`, trimmed; `None` when unset or blank (the default applies).
fn value_of(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

/// A whole number from `minimum` to `maximum` (digits, an optional `+`), or `default` when unset or blank.
fn int_env(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    minimum: u64,
    maximum: u64,
) -> Result<u64, ConfigError> {
    let Some(text) = value_of(env, name) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(value) if (minimum..=maximum).contains(&value) => Ok(value),
        _ => Err(ConfigError(format!("{name} must be a whole number from {minimum} to {maximum}, got {text:?}"))),
    }
}

/// `REQUEST_TIMEOUT_S` from `env`: seconds, more than 0 and at most a day (a decimal number, as Rust's `f64`
/// parses it); the default when unset or blank.
pub fn request_timeout_s(env: &impl Fn(&str) -> Option<String>) -> Result<f64, ConfigError> {
    const NAME: &str = "REQUEST_TIMEOUT_S";
    let Some(text) = value_of(env, NAME) else {
        return Ok(DEFAULT_REQUEST_TIMEOUT_S);
    };
    match text.parse::<f64>() {
        // NaN fails both comparisons, infinity the second.
        Ok(seconds) if seconds > 0.0 && seconds <= MAX_REQUEST_TIMEOUT_S => Ok(seconds),
        _ => Err(ConfigError(format!(
            "{NAME} must be a number of seconds greater than 0 and at most {MAX_REQUEST_TIMEOUT_S}, got {text:?}"
        ))),
    }
}

/// CPUs this process may use: the cgroup quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`),
/// capped by the CPUs in the affinity mask.
pub fn cpu_limit(cgroup_root: &Path, affinity: usize) -> f64 {
    let available = affinity.max(1) as f64;
    match cgroup_quota(cgroup_root) {
        Some(quota) if quota > 0.0 => available.min(quota),
        _ => available,
    }
}

/// The CPU quota in CPUs, or `None` when there is none (or it cannot be read).
pub fn cgroup_quota(root: &Path) -> Option<f64> {
    if let Ok(text) = std::fs::read_to_string(root.join("cpu.max")) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [] | ["max", ..] => return None,
            [quota, period, ..] => {
                if let (Ok(quota), Ok(period)) = (quota.parse::<i64>(), period.parse::<i64>()) {
                    return (period != 0).then(|| quota as f64 / period as f64);
                }
            }
            _ => {}
        }
    }
    for folder in ["cpu", "cpu,cpuacct"] {
        let read = |file: &str| std::fs::read_to_string(root.join(folder).join(file)).ok()?.trim().parse::<i64>().ok();
        let (Some(quota), Some(period)) = (read("cpu.cfs_quota_us"), read("cpu.cfs_period_us")) else {
            continue;
        };
        return (quota > 0 && period > 0).then(|| quota as f64 / period as f64);
    }
    None
}

/// `len(os.sched_getaffinity(0))`.
pub fn affinity_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let count = libc::CPU_COUNT(&set);
            if count > 0 {
                return count as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)], cpus: f64) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env_with_cpus(|name| map.get(name).cloned(), cpus)
    }

    #[test]
    fn defaults_follow_the_cpu_limit() {
        let s = settings(&[], 2.0).unwrap();
        assert_eq!((s.workers, s.threads, s.port), (2, 1, 8082));
        assert_eq!(s.model_dir, PathBuf::from("/opt/model"));
        assert_eq!(s.ort_dylib_path, PathBuf::from("/opt/onnxruntime/libonnxruntime.so"));
        assert_eq!((s.max_body_bytes, s.max_pixels), (16 * 1024 * 1024, 50_000_000));
        let s = settings(&[], 0.5).unwrap();
        assert_eq!((s.workers, s.threads, s.cpu_limit), (1, 1, 0.5));
        let s = settings(&[("WORKERS", "1")], 3.7).unwrap();
        assert_eq!((s.workers, s.threads), (1, 3));
        let s = settings(&[], 1.23456).unwrap();
        assert_eq!(s.cpu_limit, 1.235);
    }

    #[test]
    fn values_are_trimmed_whole_numbers() {
        let s = settings(
            &[
                ("PORT", " 9000 "),
                ("WORKERS", "+3"),
                ("THREADS", "2"),
                ("MAX_PIXELS", "1000000"),
                ("MAX_BODY_BYTES", "  "),
                ("MODEL_DIR", "/models/x"),
            ],
            1.0,
        )
        .unwrap();
        assert_eq!((s.port, s.workers, s.threads, s.max_pixels), (9000, 3, 2, 1_000_000));
        assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(s.model_dir, PathBuf::from("/models/x"));
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value, range) in [
            ("PORT", "http", "1 to 65535"),
            ("PORT", "0", "1 to 65535"),
            ("PORT", "70000", "1 to 65535"),
            ("WORKERS", "-2", "1 to 1024"),
            ("THREADS", "1.5", "1 to 1024"),
            ("MAX_PIXELS", "1_000", "1 to 18446744073709551615"),
            ("MAX_BODY_BYTES", "99999999999999999999999", "1 to 4294967295"),
        ] {
            let message = format!("{name} must be a whole number from {range}, got {value:?}");
            assert_eq!(settings(&[(name, value)], 1.0), Err(ConfigError(message)), "{name}={value}");
        }
    }

    #[test]
    fn request_timeouts_are_seconds() {
        assert_eq!(settings(&[], 1.0).unwrap().request_timeout_s, 30.0);
        assert_eq!(settings(&[], 1.0).unwrap().request_timeout(), Duration::from_secs(30));
        for (value, seconds) in [
            ("0.001", 0.001),
            (" 2 ", 2.0),
            ("+1.5", 1.5),
            (".5", 0.5),
            ("1e-3", 0.001),
            ("86400", 86_400.0),
            ("", 30.0),
        ] {
            let s = settings(&[("REQUEST_TIMEOUT_S", value)], 1.0).unwrap();
            assert_eq!(s.request_timeout_s, seconds, "{value}");
        }
        let quarter = settings(&[("REQUEST_TIMEOUT_S", "0.25")], 1.0).unwrap();
        assert_eq!(quarter.request_timeout(), Duration::from_millis(250));
        for bad in ["fast", "inf", "NaN", "-1", "0", "-0.0", "1e-400", "86401", "1e999", "30s", "1_0", "0x10"] {
            let message =
                format!("REQUEST_TIMEOUT_S must be a number of seconds greater than 0 and at most 86400, got {bad:?}");
            assert_eq!(settings(&[("REQUEST_TIMEOUT_S", bad)], 1.0), Err(ConfigError(message)), "{bad}");
        }
    }

    #[test]
    fn the_log_line_is_json_in_order() {
        let line = settings(&[], 1.0).unwrap().describe();
        assert!(line.starts_with(r#"{"service":"rust-onnx-serving","config":{"model_dir":"/opt/model","port":8082,"#));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["config"]["cpu_limit"], 1.0);
    }

    fn cgroup(files: &[(&str, &str)]) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("rust-onnx-serving-cgroup-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn cgroup_v2_quota() {
        assert_eq!(cgroup_quota(&cgroup(&[("cpu.max", "150000 100000\n")])), Some(1.5));
        assert_eq!(cgroup_quota(&cgroup(&[("cpu.max", "max 100000\n")])), None);
        assert_eq!(cpu_limit(&cgroup(&[("cpu.max", "50000 100000")]), 4), 0.5);
        assert_eq!(cpu_limit(&cgroup(&[("cpu.max", "800000 100000")]), 2), 2.0);
        assert_eq!(cpu_limit(&cgroup(&[("cpu.max", "max 100000")]), 2), 2.0);
    }

    #[test]
    fn cgroup_v1_quota() {
        let v1 = cgroup(&[("cpu/cpu.cfs_quota_us", "100000\n"), ("cpu/cpu.cfs_period_us", "100000\n")]);
        assert_eq!(cgroup_quota(&v1), Some(1.0));
        let unlimited = cgroup(&[("cpu/cpu.cfs_quota_us", "-1\n"), ("cpu/cpu.cfs_period_us", "100000\n")]);
        assert_eq!(cgroup_quota(&unlimited), None);
        assert_eq!(cpu_limit(&unlimited, 2), 2.0);
        let combined =
            cgroup(&[("cpu,cpuacct/cpu.cfs_quota_us", "250000"), ("cpu,cpuacct/cpu.cfs_period_us", "100000")]);
        assert_eq!(cpu_limit(&combined, 8), 2.5);
        // A malformed v2 file falls back to v1, as in Python.
        let both =
            cgroup(&[("cpu.max", "garbage"), ("cpu/cpu.cfs_quota_us", "50000"), ("cpu/cpu.cfs_period_us", "100000")]);
        assert_eq!(cgroup_quota(&both), Some(0.5));
        assert_eq!(cgroup_quota(&cgroup(&[])), None);
        assert_eq!(cpu_limit(&cgroup(&[]), 3), 3.0);
    }

    #[test]
    fn affinity_is_at_least_one() {
        assert!(affinity_cpus() >= 1);
    }
}
