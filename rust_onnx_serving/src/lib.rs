//! rust-onnx-serving: the model-serving ONNX model (preprocessing inside the graph) through ONNX Runtime (`ort`,
//! loaded from the `onnxruntime` wheel's library), behind actix-web, with the API and error contract of the
//! Python services.

pub mod bench;
pub mod config;
pub mod decoding;
pub mod error;
pub mod healthcheck;
pub mod inference;
pub mod json;
pub mod metrics;
pub mod model;
pub mod request;
pub mod server;
pub mod stages;

pub const SERVICE_NAME: &str = "rust-onnx-serving";
