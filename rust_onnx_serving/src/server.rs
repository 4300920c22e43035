//! The HTTP API (DESIGN §5), the same as the Python services': `GET /`, `POST /predict/`, and their errors.

use std::pin::Pin;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{App, HttpRequest, HttpResponse, web};
use futures_core::Stream;
use serde::Serialize;

use crate::error::{ApiError, detail_response};
use crate::inference::{InferencePool, argmax};
use crate::request;

/// What the handlers need: the model's description, the limits and the inference pool.
pub struct Service {
    pub name: String,
    pub architecture: String,
    pub model_id: String,
    pub classes: Vec<String>,
    pub workers: usize,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub pool: InferencePool,
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    message: String,
    service: &'a str,
    model_id: &'a str,
    workers: usize,
    threads: usize,
}

#[derive(Serialize)]
struct Prediction<'a> {
    prediction: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<Vec<f64>>,
}

async fn health(service: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "healthy",
        message: format!("{} is serving {}", service.name, service.architecture),
        service: &service.name,
        model_id: &service.model_id,
        workers: service.workers,
        threads: service.threads,
    })
}

async fn predict(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    // FastAPI validates the query before the handler runs; the handler then checks type, size, body.
    let with_probabilities = request::probabilities_flag(req.query_string())?;
    request::require_json(req.headers().get(CONTENT_TYPE).map(|value| value.as_bytes()))?;
    let limit = service.max_body_bytes;
    let declared = req.headers().get(CONTENT_LENGTH).map(|value| value.as_bytes());
    request::check_declared_length(declared, limit)?;
    let body = read_body(payload, declared, limit).await?;
    let probabilities = service.pool.predict(body).await?;
    let class = argmax(&probabilities)
        .and_then(|index| service.classes.get(index))
        .ok_or_else(|| ApiError::Internal(format!("the model gave {} probabilities", probabilities.len())))?;
    Ok(HttpResponse::Ok().json(Prediction {
        prediction: class,
        probabilities: with_probabilities.then(|| probabilities.iter().map(|&p| f64::from(p)).collect()),
    }))
}

/// The body, in one buffer of the declared size (no regrowth: dozens of bodies can be in flight at once).
async fn read_body(mut payload: web::Payload, declared: Option<&[u8]>, limit: usize) -> Result<Bytes, ApiError> {
    let expected = declared.and_then(|value| std::str::from_utf8(value).ok()?.parse::<usize>().ok()).unwrap_or(0);
    let mut body = BytesMut::with_capacity(expected.min(limit));
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk = chunk.map_err(|error| ApiError::BadRequest(format!("cannot read the request body: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(request::body_over_limit(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Starlette's `redirect_slashes`: `/predict` → 307 to `/predict/`, whatever the method.
async fn add_slash(req: HttpRequest) -> HttpResponse {
    let info = req.connection_info();
    let mut location = format!("http://{}{}/", info.host(), req.path());
    if !req.query_string().is_empty() {
        location.push('?');
        location.push_str(req.query_string());
    }
    HttpResponse::TemporaryRedirect().insert_header((LOCATION, location)).finish()
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The answer for a method other than `allow` on a known path.
fn only(allow: &'static str) -> impl Fn() -> std::future::Ready<Result<HttpResponse, ApiError>> + Clone {
    move || std::future::ready(Err(ApiError::MethodNotAllowed { allow }))
}

/// Error responses made by actix-web itself (not by our handlers) get the `{"detail": ...}` shape too.
fn json_errors<B: MessageBody + 'static>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json =
        response.headers().get(CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let status = response.status();
    let detail = status.canonical_reason().unwrap_or("Error");
    let (request, _) = response.into_parts();
    let replaced = detail_response(status, detail).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, replaced)))
}

/// The application: routes, the JSON error shape, the shared service.
pub fn app(
    service: web::Data<Service>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<EitherBody<BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(service)
        .wrap(ErrorHandlers::new().default_handler(json_errors))
        .service(web::resource("/").route(web::get().to(health)).default_service(web::to(only("GET"))))
        .service(web::resource("/predict/").route(web::post().to(predict)).default_service(web::to(only("POST"))))
        .service(web::resource("/predict").to(add_slash))
        .default_service(web::to(not_found))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::test::{self, TestRequest};

    use actix_web::http::Method;

    use super::*;
    use crate::decoding::RgbImage;
    use crate::inference::Classify;

    struct Fixed;

    impl Classify for Fixed {
        fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
            // Class 1 wins for wide images, class 0 (a tie, lowest index) otherwise.
            Ok(if image.width > image.height { vec![0.25, 0.5, 0.25] } else { vec![0.5, 0.5, 0.0] })
        }
    }

    fn service(max_body_bytes: usize) -> web::Data<Service> {
        with_pool(max_body_bytes, InferencePool::start(vec![Box::new(Fixed)], 1_000_000).unwrap())
    }

    fn with_pool(max_body_bytes: usize, pool: InferencePool) -> web::Data<Service> {
        web::Data::new(Service {
            name: "rust-onnx-serving".into(),
            architecture: "mobilenet_v3_small".into(),
            model_id: "abc".into(),
            classes: vec!["dew".into(), "fogsmog".into(), "frost".into()],
            workers: 1,
            threads: 2,
            max_body_bytes,
            pool,
        })
    }

    /// A 2×1 RGB PNG.
    const PNG: &str =
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAD0lEQVR4nGP4z8DAwPAfAAcAAf9+CLHQAAAAAElFTkSuQmCC";

    async fn call(request: TestRequest, max_body_bytes: usize) -> (u16, serde_json::Value, Option<String>) {
        let app = test::init_service(app(service(max_body_bytes))).await;
        let response = test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        let allow = response.headers().get(header::ALLOW).map(|v| v.to_str().unwrap().to_string());
        let location = response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string());
        let body = test::read_body(response).await;
        let json = if body.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&body).unwrap() };
        (status, json, allow.or(location))
    }

    fn post(body: &str) -> TestRequest {
        TestRequest::post()
            .uri("/predict/")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body.to_string())
    }

    #[actix_web::test]
    async fn health_reports_the_model() {
        let (status, body, _) = call(TestRequest::get().uri("/"), 1000).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({
                "status": "healthy", "message": "rust-onnx-serving is serving mobilenet_v3_small",
                "service": "rust-onnx-serving", "model_id": "abc", "workers": 1, "threads": 2
            })
        );
    }

    #[actix_web::test]
    async fn predictions_with_and_without_probabilities() {
        let body = format!("{{\"image\": \"{PNG}\"}}");
        let (status, json, _) = call(post(&body), 1000).await;
        assert_eq!((status, json), (200, serde_json::json!({"prediction": "fogsmog"})));
        let request = post(&body).uri("/predict/?probabilities=true");
        let (status, json, _) = call(request, 1000).await;
        assert_eq!(
            (status, json),
            (200, serde_json::json!({"prediction": "fogsmog", "probabilities": [0.25, 0.5, 0.25]}))
        );
        let request = post(&body).uri("/predict/?probabilities=0");
        assert_eq!(call(request, 1000).await.1, serde_json::json!({"prediction": "fogsmog"}));
    }

    #[actix_web::test]
    async fn errors_have_pythons_codes_in_pythons_order() {
        let good = format!("{{\"image\": \"{PNG}\"}}");
        let cases: Vec<(TestRequest, u16)> = vec![
            // The query is validated first, then the content type, then the size, then the body.
            (post("").uri("/predict/?probabilities=maybe").insert_header((header::CONTENT_TYPE, "text/plain")), 422),
            (post(&good).insert_header((header::CONTENT_TYPE, "text/plain")), 415),
            (TestRequest::post().uri("/predict/").set_payload(good.clone()), 415),
            (post(&good).insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8")), 200),
            (post(&"x".repeat(2000)), 413),
            (post(""), 400),
            (post("{\"image\":"), 400),
            (post(&format!("{}{}", "[".repeat(40), "]".repeat(40))), 400),
            (post("[1]"), 422),
            (post("{\"image\": 5}"), 422),
            (post("{\"image\": \"%%%\"}"), 422),
            (post("{\"image\": \"R0lGODlh\"}"), 422),
        ];
        for (request, expected) in cases {
            let (status, body, _) = call(request, 1000).await;
            assert_eq!(status, expected, "{body}");
            assert!(body["detail"].is_string() || status == 200, "{body}");
        }
    }

    struct Slow;

    impl Classify for Slow {
        fn probabilities(&mut self, _: &RgbImage) -> Result<Vec<f32>, String> {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(vec![1.0, 0.0, 0.0])
        }
    }

    #[actix_web::test]
    async fn a_prediction_over_the_request_timeout_is_a_504_and_health_stays_up() {
        let timeout = std::time::Duration::from_millis(20);
        let pool = InferencePool::start_with_timeout(vec![Box::new(Slow)], 1_000_000, timeout).unwrap();
        let app = test::init_service(app(with_pool(1000, pool))).await;
        let started = std::time::Instant::now();
        let response = test::call_service(&app, post(&format!("{{\"image\": \"{PNG}\"}}")).to_request()).await;
        assert_eq!(response.status().as_u16(), 504);
        assert!(started.elapsed() < std::time::Duration::from_millis(250), "{:?}", started.elapsed());
        let body: serde_json::Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"detail": "the request took longer than REQUEST_TIMEOUT_S (0.02 s) to process"})
        );
        let health = test::call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(health.status().as_u16(), 200);
        // Refusals made before the pool keep their codes.
        let refused =
            test::call_service(&app, post("").insert_header((header::CONTENT_TYPE, "text/plain")).to_request());
        assert_eq!(refused.await.status().as_u16(), 415);
    }

    #[actix_web::test]
    async fn unknown_paths_and_wrong_methods() {
        let (status, body, _) = call(TestRequest::get().uri("/nope"), 1000).await;
        assert_eq!((status, body), (404, serde_json::json!({"detail": "Not Found"})));
        let (status, body, allow) = call(TestRequest::get().uri("/predict/"), 1000).await;
        assert_eq!(
            (status, body, allow.as_deref()),
            (405, serde_json::json!({"detail": "Method Not Allowed"}), Some("POST"))
        );
        for method in [Method::POST, Method::HEAD, Method::PUT, Method::DELETE] {
            let (status, _, allow) = call(TestRequest::default().method(method).uri("/"), 1000).await;
            assert_eq!((status, allow.as_deref()), (405, Some("GET")));
        }
        let request =
            TestRequest::post().uri("/predict?probabilities=true").insert_header((header::HOST, "example:8082"));
        let (status, _, location) = call(request, 1000).await;
        assert_eq!((status, location.as_deref()), (307, Some("http://example:8082/predict/?probabilities=true")));
    }
}
