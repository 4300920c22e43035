//! The in-process bench (`rust-onnx-serving --bench`, DESIGN §6 "Efficiency" and "Stages"): a request's work
//! without HTTP, one thread, with each stage timed as the service times it.
//!
//! The main loop runs parse → decode → inference on one request body built in-process; `iterations` and `seconds`
//! keep their meaning from before the stages (decode + inference per iteration, and the time those took), so
//! `iterations / seconds` stays comparable with the Python services' bench. Given the served graph in its two
//! parts, their `preprocess` and `model` runs are then timed apart on the same decoded image.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decoding::{RgbImage, decode_rgb};
use crate::inference::Classify;
use crate::request;

/// Untimed calls before each loop (first runs allocate ONNX Runtime's buffers).
pub const WARMUP: usize = 3;
/// The split loop runs at least this many iterations, whatever the time.
pub const MIN_SPLIT_ITERATIONS: usize = 5;

/// `{"image": "<standard base64 of the file>"}`, as a client sends it.
pub fn request_body(image_file: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "image": base64_simd::STANDARD.encode_to_string(image_file) }))
        .expect("a JSON object of one string serializes")
}

/// Mean, median and 99th percentile (nearest rank) of a stage's samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        // Nanoseconds / 1e6 is the closest f64 to each sample in milliseconds (seconds × 1e3 may not be).
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_nanos() as f64 / 1e6).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        if n == 0 {
            return None;
        }
        let p50 = if n % 2 == 1 { ms[n / 2] } else { (ms[n / 2 - 1] + ms[n / 2]) / 2.0 };
        // Nearest rank: the smallest sample with at least 99 % of the samples at or below it, ceil(0.99 n).
        let rank = (99 * n).div_ceil(100).max(1);
        Some(Summary { mean: ms.iter().sum::<f64>() / n as f64, p50, p99: ms[rank - 1] })
    }
}

/// The main loop's figures.
#[derive(Debug)]
pub struct RequestBench {
    pub iterations: u64,
    /// Decode + inference time, summed over the iterations.
    pub seconds: f64,
    pub parse: Vec<Duration>,
    pub decode: Vec<Duration>,
    pub inference: Vec<Duration>,
    /// The last decoded image, for the split loop.
    pub image: RgbImage,
}

/// One request's work: (parse, decode, inference) durations and the decoded image.
fn timed_request(
    classifier: &mut dyn Classify,
    body: &[u8],
    max_pixels: Option<u64>,
) -> Result<([Duration; 3], RgbImage), String> {
    let started = Instant::now();
    let data = request::parse_predict_body(body).map_err(|error| error.detail())?;
    let parsed = Instant::now();
    let image = decode_rgb(&data, max_pixels).map_err(|error| error.to_string())?;
    let decoded = Instant::now();
    classifier.probabilities(&image)?;
    let inferred = Instant::now();
    Ok(([parsed - started, decoded - parsed, inferred - decoded], image))
}

/// Parse, decode and classify `body` until decode + inference have taken `min_seconds` (> 0), after
/// [`WARMUP`] untimed calls; an error (the image cannot be classified) stops it.
pub fn bench_requests(
    classifier: &mut dyn Classify,
    body: &[u8],
    max_pixels: Option<u64>,
    min_seconds: f64,
) -> Result<RequestBench, String> {
    let mut image = None;
    for _ in 0..WARMUP {
        image = Some(timed_request(classifier, body, max_pixels)?.1);
    }
    let (mut parse, mut decode, mut inference) = (Vec::new(), Vec::new(), Vec::new());
    let mut busy = Duration::ZERO;
    while busy.as_secs_f64() < min_seconds {
        let ([parsed, decoded, inferred], last) = timed_request(classifier, body, max_pixels)?;
        busy += decoded + inferred;
        parse.push(parsed);
        decode.push(decoded);
        inference.push(inferred);
        image = Some(last);
    }
    Ok(RequestBench {
        iterations: parse.len() as u64,
        seconds: busy.as_secs_f64(),
        parse,
        decode,
        inference,
        image: image.ok_or("no warm-up call ran")?,
    })
}

/// `preprocess` then `model` on `image`, back to back, for about `min_seconds` of their time and at least
/// [`MIN_SPLIT_ITERATIONS`] iterations, after [`WARMUP`] untimed calls: their (preprocess, model) samples.
pub fn bench_split<V>(
    mut preprocess: impl FnMut(&RgbImage) -> Result<V, String>,
    mut model: impl FnMut(&V) -> Result<Vec<f32>, String>,
    image: &RgbImage,
    min_seconds: f64,
) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    for _ in 0..WARMUP {
        model(&preprocess(image)?)?;
    }
    let (mut preprocessed, mut modelled) = (Vec::new(), Vec::new());
    let mut busy = Duration::ZERO;
    while busy.as_secs_f64() < min_seconds || preprocessed.len() < MIN_SPLIT_ITERATIONS {
        let started = Instant::now();
        let pixel_values = preprocess(image)?;
        let middle = Instant::now();
        model(&pixel_values)?;
        let done = Instant::now();
        busy += done - started;
        preprocessed.push(middle - started);
        modelled.push(done - middle);
    }
    Ok((preprocessed, modelled))
}

#[derive(Serialize)]
struct StagesMs {
    parse: Option<Summary>,
    decode: Option<Summary>,
    inference: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preprocess: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<Summary>,
}

#[derive(Serialize)]
struct Report {
    iterations: u64,
    seconds: f64,
    threads: usize,
    stages_ms: StagesMs,
}

/// The one JSON line: `{"iterations", "seconds", "threads", "stages_ms": {"parse", "decode", "inference"[,
/// "preprocess", "model"]}}`, each stage `{"mean", "p50", "p99"}` in milliseconds.
pub fn report(requests: &RequestBench, threads: usize, split: Option<&(Vec<Duration>, Vec<Duration>)>) -> String {
    let report = Report {
        iterations: requests.iterations,
        seconds: requests.seconds,
        threads,
        stages_ms: StagesMs {
            parse: Summary::of(&requests.parse),
            decode: Summary::of(&requests.decode),
            inference: Summary::of(&requests.inference),
            preprocess: split.and_then(|(preprocess, _)| Summary::of(preprocess)),
            model: split.and_then(|(_, model)| Summary::of(model)),
        },
    };
    serde_json::to_string(&report).expect("the report serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×1 RGB PNG.
    const PNG: &str =
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAD0lEQVR4nGP4z8DAwPAfAAcAAf9+CLHQAAAAAElFTkSuQmCC";

    struct Sleepy;

    impl Classify for Sleepy {
        fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
            std::thread::sleep(Duration::from_millis(2));
            Ok(vec![image.width as f32])
        }
    }

    #[test]
    fn summaries_are_mean_median_and_nearest_rank_p99() {
        let ms = |values: &[u64]| values.iter().map(|&v| Duration::from_millis(v)).collect::<Vec<_>>();
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&ms(&[7])), Some(Summary { mean: 7.0, p50: 7.0, p99: 7.0 }));
        assert_eq!(Summary::of(&ms(&[4, 1, 3, 2])), Some(Summary { mean: 2.5, p50: 2.5, p99: 4.0 }));
        // 1..=200 ms: the 99th percentile by nearest rank is the 198th sample.
        let many: Vec<u64> = (1..=200).rev().collect();
        assert_eq!(Summary::of(&ms(&many)), Some(Summary { mean: 100.5, p50: 100.5, p99: 198.0 }));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(Summary::of(&ms(&hundred)).unwrap().p99, 99.0);
        let one_more: Vec<u64> = (1..=101).collect();
        assert_eq!(Summary::of(&ms(&one_more)).unwrap(), Summary { mean: 51.0, p50: 51.0, p99: 100.0 });
    }

    #[test]
    fn the_request_body_is_what_a_client_sends() {
        let file = base64_simd::STANDARD.decode_to_vec(PNG).unwrap();
        let body = request_body(&file);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json, serde_json::json!({ "image": PNG }));
        assert_eq!(request::parse_predict_body(&body), Ok(file));
    }

    #[test]
    fn the_loops_time_every_stage_and_report_one_json_line() {
        let body = request_body(&base64_simd::STANDARD.decode_to_vec(PNG).unwrap());
        let requests = bench_requests(&mut Sleepy, &body, None, 0.02).unwrap();
        assert!(requests.iterations >= 1);
        let n = requests.iterations as usize;
        assert_eq!((requests.parse.len(), requests.decode.len(), requests.inference.len()), (n, n, n));
        let busy: Duration = requests.decode.iter().chain(&requests.inference).sum();
        assert_eq!(requests.seconds, busy.as_secs_f64());
        assert!(requests.seconds >= 0.02);
        assert_eq!((requests.image.width, requests.image.height), (2, 1));

        let mut classifier = Sleepy;
        let split =
            bench_split(|image| Ok(image.clone()), |image| classifier.probabilities(image), &requests.image, 0.0)
                .unwrap();
        assert_eq!((split.0.len(), split.1.len()), (MIN_SPLIT_ITERATIONS, MIN_SPLIT_ITERATIONS));
        assert!(split.1.iter().all(|d| *d >= Duration::from_millis(2)));

        let line = report(&requests, 3, Some(&split));
        assert!(!line.contains('\n'));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["iterations"], n);
        assert_eq!(json["threads"], 3);
        let stages = json["stages_ms"].as_object().unwrap();
        fn sorted(keys: serde_json::map::Keys<'_>) -> Vec<&str> {
            let mut keys: Vec<&str> = keys.map(String::as_str).collect();
            keys.sort_unstable();
            keys
        }
        assert_eq!(sorted(stages.keys()), ["decode", "inference", "model", "parse", "preprocess"]);
        for summary in stages.values() {
            assert_eq!(sorted(summary.as_object().unwrap().keys()), ["mean", "p50", "p99"]);
        }
        assert!(stages["model"]["p50"].as_f64().unwrap() >= 2.0);
        // In the order written: iterations, seconds, threads, stages_ms (parse, decode, inference, ...).
        assert!(line.starts_with("{\"iterations\":"), "{line}");
        assert!(
            line.find("\"parse\"") < line.find("\"decode\"") && line.find("\"inference\"") < line.find("\"model\"")
        );
        let without_split: serde_json::Value = serde_json::from_str(&report(&requests, 1, None)).unwrap();
        assert_eq!(without_split["stages_ms"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn an_image_that_cannot_be_classified_stops_the_bench() {
        let error = bench_requests(&mut Sleepy, b"{\"image\": \"R0lGODlh\"}", None, 1.0).unwrap_err();
        assert_eq!(error, "image is not a decodable JPEG or PNG file");
        let error = bench_requests(&mut Sleepy, b"{}", None, 1.0).unwrap_err();
        assert_eq!(error, "field 'image' is missing");
    }
}
