//! `rust-onnx-serving`: log the configuration, check and load the model (or exit non-zero saying why), serve.
//! `rust-onnx-serving --healthcheck`: exit 0 when the local service answers `GET /` with 200.
//! `rust-onnx-serving --bench IMAGE SECONDS`: the decode-and-predict path without HTTP, for the efficiency figure.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use actix_web::{HttpServer, web};
use ort::session::builder::PrepackedWeights;
use rust_onnx_serving::config::{ConfigError, Settings};
use rust_onnx_serving::decoding::decode_rgb;
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
        ["--bench", image, seconds] => bench(image, seconds),
        ["--version"] => {
            println!("{SERVICE_NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: {SERVICE_NAME} [--healthcheck | --bench IMAGE SECONDS | --version]  \
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

/// The decode-and-predict path without HTTP, one worker, for at least `seconds` after three untimed calls;
/// prints `{"iterations": n, "seconds": s, "threads": t}` like `python -m serving_common.bench`.
fn bench(image: &str, seconds: &str) -> ExitCode {
    let (Ok(data), Ok(min_seconds)) = (std::fs::read(image), seconds.parse::<f64>()) else {
        eprintln!("{SERVICE_NAME}: --bench needs a readable image file and a number of seconds");
        return ExitCode::from(2);
    };
    let settings = match settings() {
        Ok(settings) => Settings { workers: 1, ..settings },
        Err(error) => {
            eprintln!("{SERVICE_NAME}: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let mut classifier = match load(&settings) {
        Ok((_, mut classifiers)) => classifiers.remove(0),
        Err(error) => {
            eprintln!("{SERVICE_NAME}: cannot start: {error}");
            return ExitCode::from(3);
        }
    };
    let max_pixels = Some(settings.max_pixels);
    let mut call = || decode_rgb(&data, max_pixels).is_ok_and(|image| classifier.probabilities(&image).is_ok());
    for _ in 0..3 {
        if !call() {
            eprintln!("{SERVICE_NAME}: {image} cannot be classified");
            return ExitCode::from(1);
        }
    }
    let started = Instant::now();
    let mut iterations = 0u64;
    while started.elapsed().as_secs_f64() < min_seconds {
        call();
        iterations += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(r#"{{"iterations": {iterations}, "seconds": {elapsed}, "threads": {}}}"#, settings.threads);
    ExitCode::SUCCESS
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
    let pool = match InferencePool::start_with_timeout(classifiers, settings.max_pixels, settings.request_timeout()) {
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
