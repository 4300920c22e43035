//! Inference off the async executor: a pool of threads, each owning one ONNX Runtime session (`ort` 2.0 runs a
//! session through `&mut self`; its maintainers' advice is a session per thread). A job is the whole
//! request body: parsing, base64, decoding and inference all run on the pool, so the actix workers only do I/O
//! and `GET /` stays responsive under load. At most one image per thread is decoded at a time.
//!
//! `REQUEST_TIMEOUT_S`: a request whose job has not answered in time is answered 504 at once. A running job
//! cannot be cancelled (neither libjpeg nor ONNX Runtime can be stopped midway): it is abandoned, and its thread
//! skips what is left of it at the next step (a job still queued is skipped whole; parse → decode → inference).

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use tokio::sync::oneshot;

use crate::config;
use crate::decoding::{self, RgbImage};
use crate::error::ApiError;
use crate::model::Predictor;
use crate::request;

/// Decoded image → probabilities in class order.
pub trait Classify: Send + 'static {
    fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String>;
}

impl Classify for Predictor {
    fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
        Predictor::probabilities(self, image)
    }
}

type Reply = oneshot::Sender<Result<Vec<f32>, ApiError>>;

struct Job {
    body: Bytes,
    deadline: Instant,
    reply: Reply,
}

impl Job {
    /// Nobody waits for the answer any more: the request timed out (or its client went away).
    fn abandoned(&self) -> bool {
        self.reply.is_closed() || Instant::now() >= self.deadline
    }
}

pub struct InferencePool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
    timeout: Duration,
}

impl InferencePool {
    /// One thread per classifier; the request timeout is `REQUEST_TIMEOUT_S` of the process environment (as
    /// `Settings` reads it; an unreadable value, which `Settings` refuses at start, means the default).
    pub fn start(classifiers: Vec<Box<dyn Classify>>, max_pixels: u64) -> std::io::Result<InferencePool> {
        let seconds = config::request_timeout_s(&|name: &str| std::env::var(name).ok())
            .unwrap_or(config::DEFAULT_REQUEST_TIMEOUT_S);
        Self::start_with_timeout(classifiers, max_pixels, Duration::from_secs_f64(seconds))
    }

    /// One thread per classifier; a request whose processing takes longer than `timeout` is answered 504.
    pub fn start_with_timeout(
        classifiers: Vec<Box<dyn Classify>>,
        max_pixels: u64,
        timeout: Duration,
    ) -> std::io::Result<InferencePool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = classifiers.len();
        for (index, mut classifier) in classifiers.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            thread::Builder::new().name(format!("inference-{index}")).spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                    let Ok(job) = next else {
                        return; // the pool was dropped
                    };
                    let work = || predict(classifier.as_mut(), &job.body, max_pixels, || job.abandoned(), timeout);
                    let result = panic::catch_unwind(AssertUnwindSafe(work))
                        .unwrap_or_else(|_| Err(ApiError::Internal("inference failed unexpectedly".into())));
                    // The client may have gone; nobody to tell then.
                    let _ = job.reply.send(result);
                }
            })?;
        }
        Ok(InferencePool { jobs, threads, timeout })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Probabilities for a request body, or why the request is refused (504 after the timeout).
    pub async fn predict(&self, body: Bytes) -> Result<Vec<f32>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let now = Instant::now();
        let deadline = now.checked_add(self.timeout).unwrap_or(now + Duration::from_secs(86_400));
        self.jobs
            .send(Job { body, deadline, reply })
            .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?;
        match actix_web::rt::time::timeout(self.timeout, answer).await {
            Ok(answer) => answer.map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?,
            // Dropping `answer` closes the channel: the job's thread sees it and skips what is left.
            Err(_) => Err(timed_out(self.timeout)),
        }
    }
}

fn timed_out(timeout: Duration) -> ApiError {
    ApiError::GatewayTimeout(format!(
        "the request took longer than REQUEST_TIMEOUT_S ({} s) to process",
        timeout.as_secs_f64()
    ))
}

/// The work of one request (serving_common.app.Service.predict): each step starts only while somebody waits.
fn predict(
    classifier: &mut dyn Classify,
    body: &[u8],
    max_pixels: u64,
    abandoned: impl Fn() -> bool,
    timeout: Duration,
) -> Result<Vec<f32>, ApiError> {
    let go_on = || if abandoned() { Err(timed_out(timeout)) } else { Ok(()) };
    go_on()?;
    let data = request::parse_predict_body(body)?;
    go_on()?;
    let image = decoding::decode_rgb(&data, Some(max_pixels))?;
    drop(data);
    go_on()?;
    classifier.probabilities(&image).map_err(|error| ApiError::Internal(format!("inference failed: {error}")))
}

/// The index of the largest probability, the lowest one on a tie (numpy's argmax; a NaN wins, as there).
pub fn argmax(values: &[f32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (index, &value) in values.iter().enumerate() {
        if value.is_nan() {
            return Some(index);
        }
        match best {
            Some(current) if values[current] >= value => {}
            _ => best = Some(index),
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_lowest_index_on_ties() {
        assert_eq!(argmax(&[0.1, 0.4, 0.4, 0.1]), Some(1));
        assert_eq!(argmax(&[0.5, 0.1]), Some(0));
        assert_eq!(argmax(&[0.1, 0.2, 0.7]), Some(2));
        assert_eq!(argmax(&[0.1, f32::NAN, 0.9]), Some(1));
        assert_eq!(argmax(&[]), None);
    }

    struct Constant;

    impl Classify for Constant {
        fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
            Ok(vec![image.width as f32, image.height as f32])
        }
    }

    struct Panics;

    impl Classify for Panics {
        fn probabilities(&mut self, _: &RgbImage) -> Result<Vec<f32>, String> {
            panic!("boom");
        }
    }

    fn png_body() -> Bytes {
        // A 2×1 RGB PNG, base64.
        Bytes::from_static(
            b"{\"image\": \"iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAD0lEQVR4nGP4z8DAwPAfAAcAAf9+CLHQAAAAAElFTkSuQmCC\"}",
        )
    }

    #[actix_web::test]
    async fn jobs_run_on_the_pool() {
        let pool = InferencePool::start(vec![Box::new(Constant), Box::new(Constant)], 1000).unwrap();
        assert_eq!(pool.threads(), 2);
        assert_eq!(pool.predict(png_body()).await, Ok(vec![2.0, 1.0]));
        let refused = pool.predict(Bytes::from_static(b"{}")).await.unwrap_err();
        assert_eq!(refused, ApiError::Unprocessable("field 'image' is missing".into()));
        // The pixel limit comes from the pool.
        let small = InferencePool::start(vec![Box::new(Constant)], 1).unwrap();
        let error = small.predict(png_body()).await.unwrap_err();
        assert_eq!(error, ApiError::Unprocessable("image is 2x1 pixels; the limit is 1 pixels".into()));
    }

    /// Sleeps for as long as the image is wide, in milliseconds, and counts the calls.
    struct Slow(Arc<std::sync::atomic::AtomicUsize>);

    impl Classify for Slow {
        fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            thread::sleep(Duration::from_millis(image.width as u64 * 100));
            Ok(vec![1.0])
        }
    }

    #[actix_web::test]
    async fn a_slow_request_is_a_504_and_queued_work_is_skipped() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let slow = Box::new(Slow(calls.clone()));
        let pool =
            std::rc::Rc::new(InferencePool::start_with_timeout(vec![slow], 1000, Duration::from_millis(50)).unwrap());
        assert_eq!(pool.timeout(), Duration::from_millis(50));
        let started = Instant::now();
        // Two at once on one thread: the first runs (200 ms) past its timeout, the second times out in the queue.
        let spawn =
            |pool: std::rc::Rc<InferencePool>| actix_web::rt::spawn(async move { pool.predict(png_body()).await });
        let (first, second) = (spawn(pool.clone()), spawn(pool.clone()));
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        let expected =
            ApiError::GatewayTimeout("the request took longer than REQUEST_TIMEOUT_S (0.05 s) to process".into());
        assert_eq!((first.unwrap_err(), second.unwrap_err()), (expected.clone(), expected));
        assert!(started.elapsed() < Duration::from_millis(150), "{:?}", started.elapsed());
        // The thread finishes the inference it had started, then skips the abandoned job without running it.
        thread::sleep(Duration::from_millis(300));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Refusals that come before the timeout are still refusals.
        assert_eq!(
            pool.predict(Bytes::from_static(b"{}")).await.unwrap_err(),
            ApiError::Unprocessable("field 'image' is missing".into())
        );
        let quick = InferencePool::start_with_timeout(vec![Box::new(Constant)], 1000, Duration::from_secs(5)).unwrap();
        assert_eq!(quick.predict(png_body()).await, Ok(vec![2.0, 1.0]));
    }

    #[test]
    fn the_default_timeout_comes_from_the_environment_or_is_30_s() {
        let pool = InferencePool::start(vec![Box::new(Constant)], 1000).unwrap();
        let expected =
            std::env::var("REQUEST_TIMEOUT_S").ok().and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(30.0);
        assert_eq!(pool.timeout(), Duration::from_secs_f64(expected));
    }

    #[actix_web::test]
    async fn a_panic_is_an_internal_error_and_the_thread_lives_on() {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        let pool = InferencePool::start(vec![Box::new(Panics)], 1000).unwrap();
        for _ in 0..2 {
            let error = pool.predict(png_body()).await.unwrap_err();
            assert_eq!(error, ApiError::Internal("inference failed unexpectedly".into()));
        }
        panic::set_hook(previous);
    }
}
