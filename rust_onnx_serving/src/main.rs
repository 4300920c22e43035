//! `rust-onnx-serving`: log the configuration, check and load the model (or exit non-zero saying why), serve.
//! `rust-onnx-serving --healthcheck`: exit 0 when the local service answers `GET /` with 200.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use actix_web::{HttpServer, web};
use ort::session::builder::PrepackedWeights;
use rust_onnx_serving::config::{ConfigError, Settings};
use rust_onnx_serving::inference::{Classify, InferencePool};
use rust_onnx_serving::model::{self, ModelError, Predictor};
use rust_onnx_serving::server::{self, Service};
use rust_onnx_serving::{SERVICE_NAME, healthcheck};

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
        ["--version"] => {
            println!("{SERVICE_NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: {SERVICE_NAME} [--healthcheck | --version]  (configuration from the environment)");
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

fn settings() -> Result<Settings, ConfigError> {
    Settings::from_env(env, Path::new("/sys/fs/cgroup"))
}

/// Everything that can fail because of the model, done before listening.
fn load(settings: &Settings) -> Result<(model::Manifest, Vec<Box<dyn Classify>>), ModelError> {
    let manifest = model::read_manifest(&settings.model_dir)?;
    model::verify_model_file(&manifest)?;
    let environment = model::init_onnx_runtime(&settings.ort_dylib_path)?;
    let prepacked = PrepackedWeights::new();
    let mut classifiers: Vec<Box<dyn Classify>> = Vec::with_capacity(settings.workers);
    for _ in 0..settings.workers {
        let session = model::load_session(&environment, &manifest, settings.threads, &prepacked)?;
        classifiers.push(Box::new(Predictor::new(session, &manifest)));
    }
    Ok((manifest, classifiers))
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
    let (manifest, classifiers) = match load(&settings) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start: {error}");
            return ExitCode::from(3);
        }
    };
    let pool = match InferencePool::start(classifiers, settings.max_pixels) {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start the inference threads: {error}");
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
