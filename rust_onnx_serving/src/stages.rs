//! Per-request stage timings (DESIGN §6), shared by the inference pool, the `/metrics` histograms and the
//! `Server-Timing` header, with the stage names the Python services use.

use std::fmt::Write;
use std::time::Duration;

/// A step of a `/predict/` request, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Sent to the inference pool → picked up by an inference thread.
    Queue,
    /// JSON + base64.
    Parse,
    /// Image file bytes → RGB pixels.
    Decode,
    /// The ONNX graph run (preprocessing and network are one graph here).
    Inference,
    /// Request received by the middleware → response produced.
    Total,
}

impl Stage {
    /// Every stage, in the order of the `Server-Timing` header.
    pub const ALL: [Stage; 5] = [Stage::Queue, Stage::Parse, Stage::Decode, Stage::Inference, Stage::Total];

    pub const fn name(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Parse => "parse",
            Stage::Decode => "decode",
            Stage::Inference => "inference",
            Stage::Total => "total",
        }
    }
}

/// How long each stage of one request took (monotonic clock); a stage that did not run is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub queue: Option<Duration>,
    pub parse: Option<Duration>,
    pub decode: Option<Duration>,
    pub inference: Option<Duration>,
    pub total: Option<Duration>,
}

impl StageTimes {
    pub fn get(&self, stage: Stage) -> Option<Duration> {
        match stage {
            Stage::Queue => self.queue,
            Stage::Parse => self.parse,
            Stage::Decode => self.decode,
            Stage::Inference => self.inference,
            Stage::Total => self.total,
        }
    }

    pub fn set(&mut self, stage: Stage, duration: Duration) {
        let slot = match stage {
            Stage::Queue => &mut self.queue,
            Stage::Parse => &mut self.parse,
            Stage::Decode => &mut self.decode,
            Stage::Inference => &mut self.inference,
            Stage::Total => &mut self.total,
        };
        *slot = Some(duration);
    }

    /// The stages that ran, in request order.
    pub fn iter(&self) -> impl Iterator<Item = (Stage, Duration)> + '_ {
        Stage::ALL.into_iter().filter_map(|stage| Some((stage, self.get(stage)?)))
    }

    /// The W3C `Server-Timing` value: `queue;dur=0.012, parse;dur=1.904, …, total;dur=41.600` (milliseconds, three
    /// decimals, stages that did not run left out).
    pub fn server_timing(&self) -> String {
        let mut value = String::new();
        for (stage, duration) in self.iter() {
            let separator = if value.is_empty() { "" } else { ", " };
            let _ = write!(value, "{separator}{};dur={:.3}", stage.name(), duration.as_secs_f64() * 1e3);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_lists_the_stages_that_ran_in_order() {
        let mut stages = StageTimes::default();
        assert_eq!(stages.server_timing(), "");
        stages.set(Stage::Total, Duration::from_micros(41_600));
        stages.set(Stage::Parse, Duration::from_nanos(1_904_400));
        assert_eq!(stages.server_timing(), "parse;dur=1.904, total;dur=41.600");
        stages.set(Stage::Queue, Duration::from_micros(12));
        stages.set(Stage::Decode, Duration::from_nanos(12_345_000));
        stages.set(Stage::Inference, Duration::from_micros(27_210));
        assert_eq!(
            stages.server_timing(),
            "queue;dur=0.012, parse;dur=1.904, decode;dur=12.345, inference;dur=27.210, total;dur=41.600"
        );
        assert_eq!(stages.iter().map(|(stage, _)| stage.name()).collect::<Vec<_>>().len(), 5);
    }
}
