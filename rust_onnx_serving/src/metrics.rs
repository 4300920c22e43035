//! `GET /metrics` (DESIGN §5–§6): per-stage histograms, responses to `/predict/` by status code and the requests
//! in flight, with the names, labels and buckets of the Python services, plus the process collector (CPU,
//! memory, file descriptors). One registry per service, so that every test has its own figures.
//!
//! The `/predict/` middleware ([`track`]) times `total`, counts every response of the resource (the handler's
//! and the 405 of its default service alike) and adds the `Server-Timing` header; the handler leaves the pool's
//! [`StageTimes`] in the request's extensions for it.

use std::future::Future;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::stages::{Stage, StageTimes};

/// Upper bounds of the stage histograms in seconds: 10 a decade from 0.1 ms, then to 30 s. Literals, not
/// products, so that each prints as its shortest decimal; the Python services use the same list.
pub const STAGE_BUCKETS: [f64; 56] = [
    0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.0006, 0.0008, //
    0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.008, //
    0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, //
    0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, //
    1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, //
    10.0, 12.5, 15.0, 20.0, 25.0, 30.0,
];

/// The `# TYPE` lines every scrape has: the three families of the suite and the process collector's.
#[cfg(test)]
pub(crate) const FAMILY_LINES: [&str; 5] = [
    "# TYPE model_serving_stage_seconds histogram",
    "# TYPE model_serving_requests_total counter",
    "# TYPE model_serving_requests_in_flight gauge",
    "# TYPE process_cpu_seconds_total counter",
    "# TYPE process_resident_memory_bytes gauge",
];

/// The Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The service's registry and the metrics the middleware updates.
pub struct Metrics {
    registry: Registry,
    /// One histogram per stage, in `Stage::ALL` order (looked up once, not per request).
    stage_seconds: [Histogram; Stage::ALL.len()],
    requests: IntCounterVec,
    in_flight: IntGauge,
}

impl Metrics {
    /// The metrics of `service` (the value of every `service` label), registered on a registry of their own.
    pub fn new(service: &str) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let stages = HistogramVec::new(
            HistogramOpts::new(
                "model_serving_stage_seconds",
                "Time a /predict/ request spent in each stage (queue, parse, decode, inference, total)",
            )
            .const_label("service", service)
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new("model_serving_requests_total", "Responses to /predict/ by HTTP status code, errors included")
                .const_label("service", service),
            &["code"],
        )?;
        let in_flight = IntGauge::with_opts(
            Opts::new("model_serving_requests_in_flight", "/predict/ requests being handled")
                .const_label("service", service),
        )?;
        registry.register(Box::new(stages.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(ProcessMetrics(prometheus::process_collector::ProcessCollector::for_self())))?;
        // Every stage's series, and the 200 count, exist from the start: a scrape before the first request
        // already shows them at 0, so that "after − before" needs no special case.
        let stage_seconds = Stage::ALL.map(|stage| stages.with_label_values(&[stage.name()]));
        requests.with_label_values(&[StatusCode::OK.as_str()]);
        Ok(Metrics { registry, stage_seconds, requests, in_flight })
    }

    /// Observe every stage that ran.
    pub fn observe(&self, stages: &StageTimes) {
        for (stage, duration) in stages.iter() {
            self.stage_seconds[stage as usize].observe(duration.as_secs_f64());
        }
    }

    /// Count one response to `/predict/`.
    pub fn count(&self, status: StatusCode) {
        self.requests.with_label_values(&[status.as_str()]).inc();
    }

    /// The whole registry in the text format.
    pub fn render(&self) -> prometheus::Result<String> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }

    /// The response's stages (with `total` from `received`) observed, counted and in its `Server-Timing` header.
    fn finish(&self, mut response: ServiceResponse<BoxBody>, received: Instant) -> ServiceResponse<BoxBody> {
        let mut stages = response.request().extensions().get::<StageTimes>().copied().unwrap_or_default();
        stages.set(Stage::Total, received.elapsed());
        self.observe(&stages);
        self.count(response.status());
        // Only ASCII digits, letters, ';', '=', '.', ',' and spaces: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&stages.server_timing()) {
            response.headers_mut().insert(HeaderName::from_static("server-timing"), value);
        }
        response
    }
}

/// The crate's process collector (memory, file descriptors, threads, start time), with `process_cpu_seconds_total`
/// to the clock tick: the crate keeps it in an integer counter of whole seconds, too coarse for a run of a minute.
#[cfg(target_os = "linux")]
struct ProcessMetrics(prometheus::process_collector::ProcessCollector);

#[cfg(target_os = "linux")]
impl prometheus::core::Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let mut families = self.0.collect();
        let stat = procfs::process::Process::myself().and_then(|process| process.stat());
        if let Ok(stat) = stat {
            let seconds = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
            for family in families.iter_mut().filter(|family| family.name() == "process_cpu_seconds_total") {
                for metric in family.mut_metric() {
                    let mut counter = prometheus::proto::Counter::default();
                    counter.set_value(seconds);
                    metric.set_counter(counter);
                }
            }
        }
        families
    }
}

/// Counts a request in flight for as long as it lives, also when its future is dropped (the client went away).
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `/predict/` middleware (for `Resource::wrap_fn`): in flight while handled, `total` from here to the
/// response, every response counted by its code and given a `Server-Timing` header. An error that reaches here
/// unanswered is turned into its response first, so that it is counted and timed like any other.
pub fn track<S>(
    metrics: std::sync::Arc<Metrics>,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let received = Instant::now();
    let in_flight = InFlight::enter(&metrics.in_flight);
    let request = req.request().clone();
    let response = service.call(req);
    async move {
        let response = response.await.unwrap_or_else(|error| ServiceResponse::from_err(error, request));
        drop(in_flight);
        Ok(metrics.finish(response, received))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_buckets_are_10_a_decade_from_100_us_to_30_s() {
        assert_eq!(STAGE_BUCKETS.len(), 56);
        assert!(STAGE_BUCKETS.windows(2).all(|pair| pair[0] < pair[1]));
        let mantissas = [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0];
        for (decade, exponent) in (-4..=0).enumerate() {
            for (index, mantissa) in mantissas.iter().enumerate() {
                let expected: f64 = format!("{mantissa}e{exponent}").parse().unwrap();
                assert_eq!(STAGE_BUCKETS[decade * 10 + index], expected);
            }
        }
        assert_eq!(STAGE_BUCKETS[50..], [10.0, 12.5, 15.0, 20.0, 25.0, 30.0]);
    }

    #[test]
    fn the_registry_has_the_three_families_and_the_process_metrics() {
        let metrics = Metrics::new("svc").unwrap();
        let mut stages = StageTimes::default();
        stages.set(Stage::Parse, Duration::from_micros(130));
        stages.set(Stage::Total, Duration::from_secs(40));
        metrics.observe(&stages);
        metrics.count(StatusCode::UNPROCESSABLE_ENTITY);
        let text = metrics.render().unwrap();
        for family in FAMILY_LINES {
            assert!(text.lines().any(|line| line == family), "{family} missing in\n{text}");
        }
        let bucket = |stage: &str, le: &str| {
            format!("model_serving_stage_seconds_bucket{{service=\"svc\",stage=\"{stage}\",le=\"{le}\"}}")
        };
        // 0.13 ms falls in the 0.15 ms bucket, not the 0.125 ms one; 40 s only in +Inf.
        assert!(text.contains(&format!("{} 0\n", bucket("parse", "0.000125"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", bucket("parse", "0.00015"))), "{text}");
        assert!(text.contains(&format!("{} 0\n", bucket("total", "30"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", bucket("total", "+Inf"))), "{text}");
        assert!(text.contains("model_serving_requests_total{code=\"422\",service=\"svc\"} 1\n"), "{text}");
        assert!(text.contains("model_serving_requests_total{code=\"200\",service=\"svc\"} 0\n"), "{text}");
        assert!(text.contains("model_serving_requests_in_flight{service=\"svc\"} 0\n"), "{text}");
        for stage in Stage::ALL {
            let prefix = format!("model_serving_stage_seconds_bucket{{service=\"svc\",stage=\"{}\",le=", stage.name());
            let les: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix(prefix.as_str()))
                .map(|rest| rest.split('"').nth(1).unwrap())
                .collect();
            // Each bound printed as its literal (shortest decimal), then +Inf.
            let expected: Vec<String> = STAGE_BUCKETS.iter().map(f64::to_string).chain(["+Inf".to_string()]).collect();
            assert_eq!(les, expected, "{}", stage.name());
        }
        // Registries are per service: another one starts from zero.
        let other = Metrics::new("svc").unwrap().render().unwrap();
        assert!(other.contains("model_serving_requests_total{code=\"200\",service=\"svc\"} 0\n"));
        assert!(!other.contains("code=\"422\""));
    }

    #[test]
    fn the_in_flight_guard_decrements_when_dropped() {
        let metrics = Metrics::new("svc").unwrap();
        let guard = InFlight::enter(&metrics.in_flight);
        assert_eq!(metrics.in_flight.get(), 1);
        drop(guard);
        assert_eq!(metrics.in_flight.get(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_cpu_seconds_are_to_the_clock_tick() {
        let cpu_seconds = || {
            let stat = procfs::process::Process::myself().unwrap().stat().unwrap();
            (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
        };
        // Until the process has used 0.3 s of CPU, however long that takes on a busy machine.
        let mut spin = 0u64;
        while cpu_seconds() < 0.3 {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        let text = Metrics::new("svc").unwrap().render().unwrap();
        let reported: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("process_cpu_seconds_total "))
            .and_then(|value| value.parse().ok())
            .expect("process_cpu_seconds_total in the scrape");
        let now = cpu_seconds();
        // Whole seconds (the crate's own counter) would be up to a second below.
        assert!(reported >= 0.25 && (now - reported).abs() < 0.05, "reported {reported}, /proc says {now}");
    }
}
