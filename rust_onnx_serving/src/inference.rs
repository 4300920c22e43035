//! Inference off the async executor: a pool of threads, each owning one ONNX Runtime session (`ort` 2.0 runs a
//! session through `&mut self`; its maintainers' advice is a session per thread). A job is the whole
//! request body: parsing, base64, decoding and inference all run on the pool, so the actix workers only do I/O
//! and `GET /` stays responsive under load. At most one image per thread is decoded at a time.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use actix_web::web::Bytes;
use tokio::sync::oneshot;

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
    reply: Reply,
}

pub struct InferencePool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl InferencePool {
    /// One thread per classifier.
    pub fn start(classifiers: Vec<Box<dyn Classify>>, max_pixels: u64) -> std::io::Result<InferencePool> {
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
                    let result =
                        panic::catch_unwind(AssertUnwindSafe(|| predict(classifier.as_mut(), &job.body, max_pixels)))
                            .unwrap_or_else(|_| Err(ApiError::Internal("inference failed unexpectedly".into())));
                    // The client may have gone; nobody to tell then.
                    let _ = job.reply.send(result);
                }
            })?;
        }
        Ok(InferencePool { jobs, threads })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Probabilities for a request body, or why the request is refused.
    pub async fn predict(&self, body: Bytes) -> Result<Vec<f32>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { body, reply })
            .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?;
        answer.await.map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?
    }
}

/// The work of one request (serving_common.app.Service.predict).
fn predict(classifier: &mut dyn Classify, body: &[u8], max_pixels: u64) -> Result<Vec<f32>, ApiError> {
    let data = request::parse_predict_body(body)?;
    let image = decoding::decode_rgb(&data, Some(max_pixels))?;
    drop(data);
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
