//! Inference off the async executor: a pool of threads, each owning one ONNX Runtime session (`ort` 2.0 runs a
//! session through `&mut self`; its maintainers' advice is a session per thread). A job is the whole
//! request body: parsing, base64, decoding and inference all run on the pool, so the actix workers only do I/O
//! and `GET /` stays responsive under load. At most one image per thread is decoded at a time.
//!
//! `REQUEST_TIMEOUT_S`: a request whose job has not answered in time is answered 504 at once. A running job
//! cannot be cancelled (neither libjpeg nor ONNX Runtime can be stopped midway): it is abandoned, and its thread
//! skips what is left of it at the next step (a job still queued is skipped whole; parse → decode → inference).
//!
//! Each job's stage times (queue, parse, decode, inference) are written by its thread as each stage ends, into a
//! cell the waiting request shares, so that a 504 still reports the stages that did finish.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use tokio::sync::oneshot;

use crate::config;
use crate::decoding::{self, RgbImage};
use crate::error::ApiError;
use crate::model::Predictor;
use crate::request;
use crate::stages::{Stage, StageTimes};

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
    /// When the job was sent to the pool (the start of `queue`).
    sent: Instant,
    deadline: Instant,
    reply: Reply,
    stages: Arc<Mutex<StageTimes>>,
}

impl Job {
    /// Nobody waits for the answer any more: the request timed out (or its client went away).
    fn abandoned(&self) -> bool {
        self.reply.is_closed() || Instant::now() >= self.deadline
    }
}

/// What the pool answers for a request body: the probabilities or why the request is refused, and how long the
/// stages that ran took (`total` is left to the caller).
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Vec<f32>, ApiError>,
    pub stages: StageTimes,
}

fn snapshot(stages: &Mutex<StageTimes>) -> StageTimes {
    *stages.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run `work` as `stage`, recording its duration whatever it returns (a refused body still took its parse).
fn timed<T>(stages: &Mutex<StageTimes>, stage: Stage, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = work();
    let elapsed = started.elapsed();
    stages.lock().unwrap_or_else(PoisonError::into_inner).set(stage, elapsed);
    value
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
                    job.stages.lock().unwrap_or_else(PoisonError::into_inner).set(Stage::Queue, job.sent.elapsed());
                    let abandoned = || job.abandoned();
                    let work = || predict(classifier.as_mut(), &job.body, max_pixels, abandoned, timeout, &job.stages);
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

    /// Probabilities for a request body, or why the request is refused (504 after the timeout), with the times of
    /// the stages that ran (on a 504: those that had finished by then).
    pub async fn predict(&self, body: Bytes) -> Outcome {
        let shutting_down = || ApiError::Unavailable("the service is shutting down".into());
        let (reply, answer) = oneshot::channel();
        let stages = Arc::new(Mutex::new(StageTimes::default()));
        let sent = Instant::now();
        let deadline = sent.checked_add(self.timeout).unwrap_or(sent + Duration::from_secs(86_400));
        let job = Job { body, sent, deadline, reply, stages: Arc::clone(&stages) };
        if self.jobs.send(job).is_err() {
            return Outcome { result: Err(shutting_down()), stages: StageTimes::default() };
        }
        let result = match actix_web::rt::time::timeout(self.timeout, answer).await {
            Ok(answer) => answer.unwrap_or_else(|_| Err(shutting_down())),
            // Dropping `answer` closes the channel: the job's thread sees it and skips what is left.
            Err(_) => Err(timed_out(self.timeout)),
        };
        Outcome { result, stages: snapshot(&stages) }
    }
}

fn timed_out(timeout: Duration) -> ApiError {
    ApiError::GatewayTimeout(format!(
        "the request took longer than REQUEST_TIMEOUT_S ({} s) to process",
        timeout.as_secs_f64()
    ))
}

/// The work of one request: each step starts only while somebody waits.
fn predict(
    classifier: &mut dyn Classify,
    body: &[u8],
    max_pixels: u64,
    abandoned: impl Fn() -> bool,
    timeout: Duration,
    stages: &Mutex<StageTimes>,
) -> Result<Vec<f32>, ApiError> {
    let go_on = || if abandoned() { Err(timed_out(timeout)) } else { Ok(()) };
    go_on()?;
    let data = timed(stages, Stage::Parse, || request::parse_predict_body(body))?;
    go_on()?;
    let image = timed(stages, Stage::Decode, || decoding::decode_rgb(&data, Some(max_pixels)))?;
    drop(data);
    go_on()?;
    timed(stages, Stage::Inference, || classifier.probabilities(&image))
        .map_err(|error| ApiError::Internal(format!("inference failed: {error}")))
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
    use actix_web::ResponseError;

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
        assert_eq!(pool.predict(png_body()).await.result, Ok(vec![2.0, 1.0]));
        let refused = pool.predict(Bytes::from_static(b"{}")).await.result.unwrap_err();
        assert_eq!(refused, ApiError::Unprocessable("field 'image' is missing".into()));
        // The pixel limit comes from the pool.
        let small = InferencePool::start(vec![Box::new(Constant)], 1).unwrap();
        let error = small.predict(png_body()).await.result.unwrap_err();
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
        let spawn = |pool: std::rc::Rc<InferencePool>| {
            actix_web::rt::spawn(async move { pool.predict(png_body()).await.result })
        };
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
            pool.predict(Bytes::from_static(b"{}")).await.result.unwrap_err(),
            ApiError::Unprocessable("field 'image' is missing".into())
        );
        let quick = InferencePool::start_with_timeout(vec![Box::new(Constant)], 1000, Duration::from_secs(5)).unwrap();
        assert_eq!(quick.predict(png_body()).await.result, Ok(vec![2.0, 1.0]));
    }

    #[actix_web::test]
    async fn the_stages_that_ran_are_timed() {
        let pool = InferencePool::start_with_timeout(vec![Box::new(Constant)], 1000, Duration::from_secs(5)).unwrap();
        let started = Instant::now();
        let outcome = pool.predict(png_body()).await;
        let elapsed = started.elapsed();
        assert_eq!(outcome.result, Ok(vec![2.0, 1.0]));
        let stages = outcome.stages;
        let ran = [stages.queue, stages.parse, stages.decode, stages.inference];
        assert!(ran.iter().all(Option::is_some), "{stages:?}");
        // Durations are never negative; together they fit in the time the call took; `total` is the caller's.
        assert!(ran.iter().flatten().sum::<Duration>() <= elapsed, "{stages:?} in {elapsed:?}");
        assert_eq!(stages.total, None);
        // A bad body is parsed (and refused): no decode, no inference.
        let refused = pool.predict(Bytes::from_static(b"not json")).await;
        assert_eq!(refused.result.unwrap_err().status_code().as_u16(), 400);
        assert!(refused.stages.queue.is_some() && refused.stages.parse.is_some(), "{:?}", refused.stages);
        assert_eq!((refused.stages.decode, refused.stages.inference), (None, None));
        // An image over the pixel limit is parsed and refused by the decoder: no inference.
        let small = InferencePool::start(vec![Box::new(Constant)], 1).unwrap();
        let too_big = small.predict(png_body()).await;
        assert!(too_big.result.is_err());
        assert!(too_big.stages.decode.is_some() && too_big.stages.inference.is_none(), "{:?}", too_big.stages);
    }

    #[actix_web::test]
    async fn a_timed_out_request_reports_the_stages_that_had_finished() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let slow = Box::new(Slow(calls));
        let pool = InferencePool::start_with_timeout(vec![slow], 1000, Duration::from_millis(50)).unwrap();
        // The 2-pixel-wide image sleeps 200 ms in inference: queue, parse and decode finished before the 504.
        let outcome = pool.predict(png_body()).await;
        assert_eq!(outcome.result.unwrap_err().status_code().as_u16(), 504);
        let stages = outcome.stages;
        assert!(stages.queue.is_some() && stages.parse.is_some() && stages.decode.is_some(), "{stages:?}");
        assert_eq!(stages.inference, None);
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
            let error = pool.predict(png_body()).await.result.unwrap_err();
            assert_eq!(error, ApiError::Internal("inference failed unexpectedly".into()));
        }
        panic::set_hook(previous);
    }
}
