//! The HTTP API (DESIGN §5, docs/contract.md §1): `GET /`, `POST /predict/` (also without the slash),
//! `GET /metrics`; other methods on them 405, other paths 404, every error `{"detail": ...}`.

use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, web};
use futures_core::Stream;
use serde::Serialize;

use crate::error::{ApiError, detail_response};
use crate::inference::{InferencePool, argmax};
use crate::metrics::{self, Metrics};
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
    pub metrics: Arc<Metrics>,
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
    // The contract's order: the query, the content type, the size, then the body (on the pool).
    let with_probabilities = request::probabilities_flag(req.query_string())?;
    request::require_json(req.headers().get(CONTENT_TYPE).map(|value| value.as_bytes()))?;
    let limit = service.max_body_bytes;
    let declared = req.headers().get(CONTENT_LENGTH).map(|value| value.as_bytes());
    request::check_declared_length(declared, limit)?;
    let body = read_body(payload, declared, limit).await?;
    let outcome = service.pool.predict(body).await;
    // For the metrics middleware, whatever the result.
    req.extensions_mut().insert(outcome.stages);
    let probabilities = outcome.result?;
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

/// The registry in the text format, made on this actix worker: it answers while every inference thread is busy.
async fn metrics_text(service: web::Data<Service>) -> Result<HttpResponse, ApiError> {
    let text = service.metrics.render().map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(metrics::CONTENT_TYPE).body(text))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The answer for a method other than `allow` on a known path.
fn only(allow: &'static str) -> impl Fn() -> std::future::Ready<Result<HttpResponse, ApiError>> + Clone {
    move || std::future::ready(Err(ApiError::MethodNotAllowed { allow }))
}

/// Error responses made by actix-web itself (not by our handlers) get the `{"detail": ...}` shape too; their
/// other headers (`Server-Timing` on `/predict/`) are kept.
fn json_errors<B: MessageBody + 'static>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json =
        response.headers().get(CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let status = response.status();
    let detail = status.canonical_reason().unwrap_or("Error");
    let (request, original) = response.into_parts();
    let mut replaced = detail_response(status, detail);
    for (name, value) in original.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(request, replaced.map_into_right_body())))
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
    let metrics = Arc::clone(&service.metrics);
    // The middleware is on the resource, so it sees its 405s too and nothing of the other paths.
    let predict_resource = web::resource(["/predict/", "/predict"])
        .route(web::post().to(predict))
        .default_service(web::to(only("POST")))
        .wrap_fn(move |req, srv| metrics::track(Arc::clone(&metrics), req, srv));
    App::new()
        .app_data(service)
        .wrap(ErrorHandlers::new().default_handler(json_errors))
        .service(web::resource("/").route(web::get().to(health)).default_service(web::to(only("GET"))))
        .service(predict_resource)
        .service(web::resource("/metrics").route(web::get().to(metrics_text)).default_service(web::to(only("GET"))))
        .default_service(web::to(not_found))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::test::{self, TestRequest};

    use actix_web::http::Method;

    use std::time::Duration;

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
            metrics: Arc::new(Metrics::new("rust-onnx-serving").unwrap()),
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
        let body = test::read_body(response).await;
        let json = if body.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&body).unwrap() };
        (status, json, allow)
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
    async fn errors_have_the_contracts_codes_in_its_order() {
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
        for uri in ["/predict", "/predict?probabilities=true", "/predict//", "/predict/x", "/Predict/"] {
            let (status, body, allow) = call(TestRequest::get().uri(uri), 1000).await;
            let expected = if uri.starts_with("/predict?") || uri == "/predict" { 405 } else { 404 };
            assert_eq!(status, expected, "{uri}");
            assert_eq!(allow.is_some(), expected == 405, "{uri}");
            assert!(body["detail"].is_string(), "{uri}");
        }
    }

    #[actix_web::test]
    async fn predict_without_the_slash_is_the_same_endpoint() {
        let body = format!("{{\"image\": \"{PNG}\"}}");
        let (status, json, _) = call(post(&body).uri("/predict?probabilities=yes"), 1000).await;
        assert_eq!(
            (status, json),
            (200, serde_json::json!({"prediction": "fogsmog", "probabilities": [0.25, 0.5, 0.25]}))
        );
        assert_eq!(call(post("[]").uri("/predict"), 1000).await.0, 422);
        assert_eq!(call(post("{").uri("/predict"), 1000).await.0, 400);
    }

    /// The value of the sample `name{labels}` in a text exposition (labels in any order), if present.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
            let found: Vec<(&str, &str)> = rest
                .strip_suffix('}')?
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').map(|(k, v)| (k, v.trim_matches('"'))))
                .collect::<Option<_>>()?;
            let same =
                series_name == name && found.len() == labels.len() && labels.iter().all(|label| found.contains(label));
            same.then(|| value.parse().unwrap())
        })
    }

    /// `GET /metrics` (made by the caller: actix's request type cannot be named here), checked and read.
    async fn scrape<S, R>(app: &S, request: R) -> String
    where
        S: actix_web::dev::Service<R, Response = ServiceResponse<EitherBody<BoxBody>>, Error = actix_web::Error>,
    {
        let response = test::call_service(app, request).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "text/plain; version=0.0.4; charset=utf-8");
        String::from_utf8(test::read_body(response).await.to_vec()).unwrap()
    }

    const SERVICE: (&str, &str) = ("service", "rust-onnx-serving");

    fn requests_with(text: &str, code: &str) -> f64 {
        sample(text, "model_serving_requests_total", &[SERVICE, ("code", code)]).unwrap_or(0.0)
    }

    fn stage_count(text: &str, stage: &str) -> f64 {
        sample(text, "model_serving_stage_seconds_count", &[SERVICE, ("stage", stage)]).unwrap()
    }

    /// `name;dur=X.XXX` items, their names in `expected` order.
    fn assert_server_timing(value: &str, expected: &[&str]) {
        let items: Vec<&str> = value.split(", ").collect();
        assert_eq!(items.len(), expected.len(), "{value}");
        for (item, name) in items.iter().zip(expected) {
            let duration = item.strip_prefix(&format!("{name};dur=")).unwrap_or_else(|| panic!("{value}"));
            let (_, decimals) = duration.split_once('.').unwrap_or_else(|| panic!("{value}"));
            assert_eq!(decimals.len(), 3, "{value}");
            assert!(duration.parse::<f64>().unwrap() >= 0.0, "{value}");
        }
    }

    #[actix_web::test]
    async fn every_predict_response_is_counted_timed_and_has_server_timing() {
        let app = test::init_service(app(service(1000))).await;
        let before = scrape(&app, TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(requests_with(&before, "200"), 0.0);
        let good = format!("{{\"image\": \"{PNG}\"}}");
        let cases: Vec<(TestRequest, u16, &[&str])> = vec![
            (post(&good), 200, &["queue", "parse", "decode", "inference", "total"]),
            (post(&good).uri("/predict/?probabilities=1"), 200, &["queue", "parse", "decode", "inference", "total"]),
            (post(&good).insert_header((header::CONTENT_TYPE, "text/plain")), 415, &["total"]),
            (post("{\"image\": \"%%%\"}"), 422, &["queue", "parse", "total"]),
            (post("{\"image\": \"R0lGODlh\"}"), 422, &["queue", "parse", "decode", "total"]),
            (TestRequest::get().uri("/predict/"), 405, &["total"]),
        ];
        let predictions = cases.len() as f64;
        for (request, status, stages) in cases {
            let response = test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status().as_u16(), status);
            let timing = response.headers().get("server-timing").unwrap_or_else(|| panic!("{status}"));
            assert_server_timing(timing.to_str().unwrap(), stages);
        }
        // Without the slash it is the same endpoint, counted and timed.
        let response = test::call_service(&app, TestRequest::put().uri("/predict").to_request()).await;
        assert_eq!(response.status().as_u16(), 405);
        assert_server_timing(response.headers().get("server-timing").unwrap().to_str().unwrap(), &["total"]);
        // Other paths are neither counted nor timed, and get no Server-Timing.
        for uri in ["/", "/nope", "/predict/x"] {
            let response = test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
            assert!(response.headers().get("server-timing").is_none(), "{uri}");
        }
        let after = scrape(&app, TestRequest::get().uri("/metrics").to_request()).await;
        for (code, expected) in [("200", 2.0), ("415", 1.0), ("422", 2.0), ("405", 2.0), ("404", 0.0)] {
            assert_eq!(requests_with(&after, code) - requests_with(&before, code), expected, "{code}");
        }
        assert_eq!(stage_count(&after, "total") - stage_count(&before, "total"), predictions + 1.0);
        assert_eq!(stage_count(&after, "inference") - stage_count(&before, "inference"), 2.0);
        assert_eq!(stage_count(&after, "decode") - stage_count(&before, "decode"), 3.0);
        assert_eq!(stage_count(&after, "parse") - stage_count(&before, "parse"), 4.0);
        assert_eq!(stage_count(&after, "queue") - stage_count(&before, "queue"), 4.0);
        assert_eq!(sample(&after, "model_serving_requests_in_flight", &[SERVICE]), Some(0.0));
    }

    #[actix_web::test]
    async fn metrics_lists_the_families_and_the_56_buckets() {
        let app = test::init_service(app(service(1000))).await;
        let text = scrape(&app, TestRequest::get().uri("/metrics").to_request()).await;
        for family in metrics::FAMILY_LINES {
            assert!(text.lines().any(|line| line == family), "{family}");
        }
        for stage in ["queue", "parse", "decode", "inference", "total"] {
            let buckets = text
                .lines()
                .filter(|line| line.starts_with("model_serving_stage_seconds_bucket{"))
                .filter(|line| line.contains(&format!("stage=\"{stage}\"")))
                .count();
            assert_eq!(buckets, 56 + 1, "{stage}: 56 bounds and +Inf");
            assert_eq!(stage_count(&text, stage), 0.0);
        }
        assert!(sample(&text, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
        // /metrics takes GET only, as / does.
        for method in [Method::POST, Method::HEAD, Method::PUT] {
            let (status, _, allow) = call(TestRequest::default().method(method).uri("/metrics"), 1000).await;
            assert_eq!((status, allow.as_deref()), (405, Some("GET")));
        }
    }

    /// Blocks its inference thread from `started` until `release` says go.
    struct Held {
        started: Arc<std::sync::atomic::AtomicBool>,
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Classify for Held {
        fn probabilities(&mut self, _: &RgbImage) -> Result<Vec<f32>, String> {
            self.started.store(true, std::sync::atomic::Ordering::SeqCst);
            self.release.recv().map_err(|e| e.to_string())?;
            Ok(vec![1.0, 0.0, 0.0])
        }
    }

    #[actix_web::test]
    async fn metrics_answer_at_once_while_the_only_inference_thread_is_busy() {
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (release, held) = std::sync::mpsc::channel();
        let classifier = Held { started: Arc::clone(&started), release: held };
        let pool =
            InferencePool::start_with_timeout(vec![Box::new(classifier)], 1_000_000, Duration::from_secs(10)).unwrap();
        let app = std::rc::Rc::new(test::init_service(app(with_pool(1000, pool))).await);
        let predicting = {
            let app = std::rc::Rc::clone(&app);
            let request = post(&format!("{{\"image\": \"{PNG}\"}}")).to_request();
            actix_web::rt::spawn(async move { test::call_service(&*app, request).await.status().as_u16() })
        };
        while !started.load(std::sync::atomic::Ordering::SeqCst) {
            actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        }
        let asked = std::time::Instant::now();
        let text = scrape(&*app, TestRequest::get().uri("/metrics").to_request()).await;
        assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
        assert_eq!(sample(&text, "model_serving_requests_in_flight", &[SERVICE]), Some(1.0));
        release.send(()).unwrap();
        assert_eq!(predicting.await.unwrap(), 200);
        let text = scrape(&*app, TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(sample(&text, "model_serving_requests_in_flight", &[SERVICE]), Some(0.0));
        assert_eq!(requests_with(&text, "200"), 1.0);
    }

    #[actix_web::test]
    async fn json_errors_keep_the_other_headers() {
        let app = test::init_service(App::new().wrap(ErrorHandlers::new().default_handler(json_errors)).route(
            "/",
            web::get().to(|| async {
                HttpResponse::BadRequest().insert_header(("server-timing", "total;dur=1.000")).body("plain")
            }),
        ))
        .await;
        let response = test::call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("server-timing").unwrap(), "total;dur=1.000");
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        let body: serde_json::Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        assert_eq!(body, serde_json::json!({"detail": "Bad Request"}));
    }
}
