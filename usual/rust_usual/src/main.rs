//! `rust-usual`: the image classifier behind actix-web through ONNX Runtime, written the usual way: the `image`
//! crate decodes, `ndarray` builds the float32 `[1, 3, H, W]` input, one session shared behind a mutex runs it.
//!
//! Configuration from the environment: `PORT` (8082), `MODEL_DIR` (/opt/model: `usual.onnx` and `manifest.json`),
//! `ORT_DYLIB_PATH` (the ONNX Runtime shared library, read by `ort` itself).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

const SERVICE_NAME: &str = "rust-usual";
const MODEL_FILE: &str = "usual.onnx";
const MANIFEST_FILE: &str = "manifest.json";
const INPUT_NAME: &str = "image";
const OUTPUT_NAME: &str = "probabilities";
/// The usual setting; `THREADS` overrides it (the harness's "threads = CPU limit" variant).
const INTRA_THREADS: usize = 3;
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Shared by all workers: the one session (ONNX Runtime's `run` needs `&mut`, hence the mutex) and the class names.
struct AppState {
    session: Mutex<Session>,
    classes: Vec<String>,
}

#[derive(Deserialize)]
struct Manifest {
    classes: Vec<String>,
}

#[derive(Deserialize)]
struct PredictRequest {
    image: String,
}

#[derive(Deserialize)]
struct PredictQuery {
    #[serde(default)]
    probabilities: bool,
}

#[derive(Serialize)]
struct PredictResponse {
    prediction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<Vec<f32>>,
}

/// A failed request: 400 for what the client sent, 500 for our side; answered as `{"detail": ...}`.
#[derive(Debug)]
enum AppError {
    BadRequest(String),
    Internal(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::BadRequest(message) | AppError::Internal(message) => f.write_str(message),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({ "detail": self.to_string() }))
    }
}

impl From<ort::Error> for AppError {
    fn from(error: ort::Error) -> Self {
        AppError::Internal(format!("inference failed: {error}"))
    }
}

/// Base64 → encoded file → RGB image.
fn decode_image(image_base64: &str) -> Result<RgbImage, AppError> {
    let bytes = STANDARD.decode(image_base64).map_err(|e| AppError::BadRequest(format!("invalid base64: {e}")))?;
    let image = image::load_from_memory(&bytes).map_err(|e| AppError::BadRequest(format!("invalid image: {e}")))?;
    Ok(image.to_rgb8())
}

/// RGB image → float32 `[1, 3, H, W]`, channel-first, values in [0, 1].
fn to_tensor(image: &RgbImage) -> Array4<f32> {
    let (width, height) = image.dimensions();
    Array4::from_shape_fn((1, 3, height as usize, width as usize), |(_, c, y, x)| {
        image.get_pixel(x as u32, y as u32)[c] as f32 / 255.0
    })
}

fn predict(state: &AppState, image_base64: &str, with_probabilities: bool) -> Result<PredictResponse, AppError> {
    let input = to_tensor(&decode_image(image_base64)?);

    let mut session = state.session.lock().map_err(|_| AppError::Internal("the session mutex is poisoned".into()))?;
    let outputs = session.run(ort::inputs![INPUT_NAME => TensorRef::from_array_view(&input)?])?;
    let probabilities: Vec<f32> = outputs[OUTPUT_NAME].try_extract_array::<f32>()?.iter().copied().collect();
    drop(outputs);
    drop(session);

    let best = probabilities
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(index, _)| index)
        .ok_or_else(|| AppError::Internal("the model returned no probabilities".into()))?;
    let prediction = state
        .classes
        .get(best)
        .ok_or_else(|| AppError::Internal(format!("class index {best} is out of range")))?
        .clone();
    Ok(PredictResponse { prediction, probabilities: with_probabilities.then_some(probabilities) })
}

#[get("/")]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "healthy", "message": SERVICE_NAME }))
}

#[post("/predict/")]
async fn predict_handler(
    state: web::Data<AppState>,
    query: web::Query<PredictQuery>,
    body: web::Json<PredictRequest>,
) -> Result<HttpResponse, AppError> {
    // Decoding and inference are CPU-bound and the session lock may be waited on: actix's documented idiom is to
    // run such work in `web::block` (its blocking thread pool) so the async workers keep serving other requests.
    let with_probabilities = query.probabilities;
    let image = body.into_inner().image;
    let response = web::block(move || predict(&state, &image, with_probabilities))
        .await
        .map_err(|e| AppError::Internal(format!("the inference task failed: {e}")))??;
    Ok(HttpResponse::Ok().json(response))
}

fn json_error(error: actix_web::error::JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let status = error.status_code();
    let detail = format!("invalid request body: {error}");
    actix_web::error::InternalError::from_response(
        error,
        HttpResponse::build(status).json(serde_json::json!({ "detail": detail })),
    )
    .into()
}

fn query_error(error: actix_web::error::QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    AppError::BadRequest(format!("invalid query: {error}")).into()
}

fn load_classes(model_dir: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let path = model_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?;
    Ok(manifest.classes)
}

fn load_session(model_path: &Path, threads: usize) -> Result<Session, Box<dyn std::error::Error>> {
    // With `load-dynamic`, `ort` loads the library named by ORT_DYLIB_PATH when the environment is created.
    let environment = ort::init().with_name(SERVICE_NAME).build()?;
    let session = Session::builder(&environment)?
        .with_intra_threads(threads)?
        .commit_from_file(model_path)
        .map_err(|e| format!("cannot load {}: {e}", model_path.display()))?;
    Ok(session)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(value) => value.parse().map_err(|_| format!("PORT must be a port number, got {value:?}"))?,
        Err(_) => 8082,
    };
    let model_dir = PathBuf::from(std::env::var("MODEL_DIR").unwrap_or_else(|_| "/opt/model".to_string()));
    let model_path = model_dir.join(MODEL_FILE);

    let threads: usize = match std::env::var("THREADS") {
        Ok(value) => value.parse().map_err(|_| format!("THREADS must be a whole number, got {value:?}"))?,
        Err(_) => INTRA_THREADS,
    };

    let classes = load_classes(&model_dir)?;
    let session = load_session(&model_path, threads)?;
    let state = web::Data::new(AppState { session: Mutex::new(session), classes });

    println!("{SERVICE_NAME}: listening on 0.0.0.0:{port}, model {}, {threads} intra-op threads", model_path.display());
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .service(health)
            .service(predict_handler)
    })
    .bind(("0.0.0.0", port))?
    .run()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;
    use image::ImageEncoder;

    #[test]
    fn the_tensor_is_channel_first_and_scaled() {
        let image = RgbImage::from_raw(2, 1, vec![255, 0, 51, 0, 102, 255]).unwrap();
        let tensor = to_tensor(&image);
        assert_eq!(tensor.shape(), &[1, 3, 1, 2]);
        assert_eq!(tensor[[0, 0, 0, 0]], 1.0);
        assert_eq!(tensor[[0, 1, 0, 0]], 0.0);
        assert_eq!(tensor[[0, 2, 0, 0]], 0.2);
        assert_eq!(tensor[[0, 0, 0, 1]], 0.0);
        assert_eq!(tensor[[0, 1, 0, 1]], 0.4);
        assert_eq!(tensor[[0, 2, 0, 1]], 1.0);
    }

    #[test]
    fn a_png_decodes_to_rgb() {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&[10, 20, 30, 40, 50, 60], 2, 1, image::ExtendedColorType::Rgb8)
            .unwrap();
        let image = decode_image(&STANDARD.encode(&png)).unwrap();
        assert_eq!(image.dimensions(), (2, 1));
        assert_eq!(image.as_raw(), &[10, 20, 30, 40, 50, 60]);
    }

    #[test]
    fn bad_input_is_a_bad_request() {
        let AppError::BadRequest(message) = decode_image("not base64!").unwrap_err() else { panic!("not a 400") };
        assert!(message.starts_with("invalid base64: "), "{message}");
        let AppError::BadRequest(message) = decode_image(&STANDARD.encode(b"hello")).unwrap_err() else {
            panic!("not a 400")
        };
        assert!(message.starts_with("invalid image: "), "{message}");
    }

    #[actix_web::test]
    async fn errors_answer_with_a_detail() {
        let response = AppError::BadRequest("invalid base64: x".into()).error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = to_bytes(response.into_body()).await.unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["detail"], "invalid base64: x");
        assert_eq!(AppError::Internal("x".into()).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
