//! rust-onnx-serving: the model-serving ONNX model (preprocessing inside the graph) through ONNX Runtime (`ort`,
//! loaded from the `onnxruntime` wheel's library), behind actix-web, answering the request contract
//! (docs/contract.md) as the Python services do.

pub mod bench;
pub mod config;
pub mod decoding;
pub mod error;
pub mod healthcheck;
pub mod inference;
pub mod metrics;
pub mod model;
pub mod request;
pub mod server;
pub mod stages;

pub const SERVICE_NAME: &str = "rust-onnx-serving";
