//! `rust-onnx-serving`: log the configuration, check and load the model (or exit non-zero saying why), serve.
//! `rust-onnx-serving --healthcheck`: exit 0 when the local service answers `GET /` with 200.
//! `rust-onnx-serving --bench IMAGE SECONDS [PREPROCESS_ONNX NETWORK_ONNX]`: the request path without HTTP, stage
//! by stage, for the efficiency figure (see `bench`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpServer, web};
use ort::environment::Environment;
use ort::session::builder::PrepackedWeights;
use rust_onnx_serving::config::{ConfigError, Settings};
use rust_onnx_serving::inference::{Classify, InferencePool};
use rust_onnx_serving::metrics::Metrics;
use rust_onnx_serving::model::{self, ModelError, Predictor, SplitModel};
use rust_onnx_serving::server::{self, Service};
use rust_onnx_serving::{SERVICE_NAME, bench, healthcheck};

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;

fn env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => serve(),
        ["--healthcheck"] => healthcheck(),
        ["--bench", image, seconds] => run_bench(image, seconds, None),
        ["--bench", image, seconds, preprocess, network] => run_bench(image, seconds, Some((preprocess, network))),
        ["--version"] => {
            println!("{SERVICE_NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: {SERVICE_NAME} [--healthcheck | --bench IMAGE SECONDS [PREPROCESS_ONNX NETWORK_ONNX] | --version]  \
                 (configuration from the environment)"
            );
            ExitCode::from(2)
        }
    }
}

fn healthcheck() -> ExitCode {
    let settings = Settings::from_env_with_cpus(env, 1.0);
    match settings {
        Ok(settings) if healthcheck::healthy(settings.port) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// The request path without HTTP, one worker, on a body built from `image`: parse, decode and inference timed
/// apart for at least `seconds` of decode + inference, then (given the split model) its preprocess and model for
/// about half as long; prints one JSON line (`bench::report`). Exit 2 for bad arguments or an unloadable split
/// model, 3 for an unloadable served model, 1 when the image cannot be classified.
fn run_bench(image: &str, seconds: &str, split: Option<(&str, &str)>) -> ExitCode {
    let bad_arguments = |message: String| {
        eprintln!("{SERVICE_NAME}: --bench: {message}");
        ExitCode::from(2)
    };
    let data = match std::fs::read(image) {
        Ok(data) => data,
        Err(error) => return bad_arguments(format!("cannot read the image {image}: {error}")),
    };
    let min_seconds = match seconds.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => value,
        _ => return bad_arguments(format!("SECONDS must be a positive number of seconds, got {seconds:?}")),
    };
    let settings = match settings() {
        Ok(settings) => Settings { workers: 1, ..settings },
        Err(error) => return bad_arguments(format!("configuration error: {error}")),
    };
    let (environment, mut classifier) = match load(&settings) {
        Ok(Loaded { environment, mut classifiers, .. }) => (environment, classifiers.remove(0)),
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start: {error}");
            return ExitCode::from(3);
        }
    };
    let mut split_model = match split {
        None => None,
        Some((preprocess, network)) => {
            match SplitModel::load(&environment, Path::new(preprocess), Path::new(network), settings.threads) {
                Ok(split_model) => Some(split_model),
                Err(error) => return bad_arguments(format!("cannot use the split model: {error}")),
            }
        }
    };
    let body = bench::request_body(&data);
    let requests = match bench::bench_requests(classifier.as_mut(), &body, Some(settings.max_pixels), min_seconds) {
        Ok(requests) => requests,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: {image} cannot be classified: {error}");
            return ExitCode::from(1);
        }
    };
    let split_samples = match split_model.as_mut() {
        None => None,
        Some(split_model) => {
            // Two closures over one model: each borrows it only while it runs.
            let split_model = std::cell::RefCell::new(split_model);
            let preprocess = |image: &_| split_model.borrow_mut().preprocess(image);
            let network = |pixel_values: &_| split_model.borrow_mut().network(pixel_values);
            match bench::bench_split(preprocess, network, &requests.image, min_seconds / 2.0) {
                Ok(samples) => Some(samples),
                Err(error) => {
                    eprintln!("{SERVICE_NAME}: the split model cannot classify {image}: {error}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    println!("{}", bench::report(&requests, settings.threads, split_samples.as_ref()));
    ExitCode::SUCCESS
}

fn settings() -> Result<Settings, ConfigError> {
    Settings::from_env(env, Path::new("/sys/fs/cgroup"))
}

/// The model, checked and loaded: one classifier (session) per worker.
struct Loaded {
    manifest: model::Manifest,
    /// For the bench's split-model sessions.
    environment: Environment,
    classifiers: Vec<Box<dyn Classify>>,
}

/// Everything that can fail because of the model, done before listening.
fn load(settings: &Settings) -> Result<Loaded, ModelError> {
    let manifest = model::read_manifest(&settings.model_dir)?;
    model::verify_model_file(&manifest)?;
    let environment = model::init_onnx_runtime(&settings.ort_dylib_path)?;
    let prepacked = PrepackedWeights::new();
    let mut classifiers: Vec<Box<dyn Classify>> = Vec::with_capacity(settings.workers);
    for _ in 0..settings.workers {
        let session = model::load_session(&environment, &manifest, settings.threads, &prepacked)?;
        classifiers.push(Box::new(Predictor::new(session, &manifest)));
    }
    Ok(Loaded { manifest, environment, classifiers })
}

fn serve() -> ExitCode {
    let started = Instant::now();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    println!("{}", settings.describe());
    let Loaded { manifest, classifiers, .. } = match load(&settings) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start: {error}");
            return ExitCode::from(3);
        }
    };
    let pool = match InferencePool::start_with_timeout(classifiers, settings.max_pixels, settings.request_timeout()) {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start the inference threads: {error}");
            return ExitCode::from(1);
        }
    };
    let metrics = match Metrics::new(SERVICE_NAME) {
        Ok(metrics) => Arc::new(metrics),
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot set up the metrics: {error}");
            return ExitCode::from(1);
        }
    };
    let service = web::Data::new(Service {
        name: SERVICE_NAME.into(),
        architecture: manifest.architecture.clone(),
        model_id: manifest.model_id.clone(),
        classes: manifest.classes.clone(),
        workers: settings.workers,
        threads: settings.threads,
        max_body_bytes: usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX),
        pool,
        metrics,
    });
    let result = actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || server::app(service.clone()))
            .workers(settings.workers)
            .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS)
            .bind(("0.0.0.0", settings.port))?
            .run();
        eprintln!(
            "{SERVICE_NAME} ready: model_id {} on port {} ({} ms)",
            manifest.model_id,
            settings.port,
            started.elapsed().as_millis()
        );
        server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot serve on port {}: {error}", settings.port);
            ExitCode::from(1)
        }
    }
}
