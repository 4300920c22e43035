//! The model artifact folder (manifest, sha256-verified ONNX model) and ONNX Runtime sessions over it.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::decoding::RgbImage;

pub const MANIFEST_NAME: &str = "manifest.json";
/// The file of the artifact folder this service serves: the offline-optimized model.
pub const MODEL_ROLE: &str = "onnx_optimized";

/// A model or artifact folder that cannot be used; the message says why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

fn model_error<T>(message: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError(message.into()))
}

/// What the service needs from `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub model_id: String,
    pub architecture: String,
    pub classes: Vec<String>,
    pub model_path: PathBuf,
    pub model_sha256: String,
    pub input_name: String,
    pub output_name: String,
}

/// Read and check `manifest.json` in `directory` (serving_common.manifest.read_manifest, plus the fields used).
pub fn read_manifest(directory: &Path) -> Result<Manifest, ModelError> {
    let path = directory.join(MANIFEST_NAME);
    let dir = directory.display();
    if !path.is_file() {
        return model_error(format!("no {MANIFEST_NAME} in {dir}: run `model-serving export --out {dir}`"));
    }
    let bytes = std::fs::read(&path).map_err(|e| ModelError(format!("cannot read {}: {e}", path.display())))?;
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| ModelError(format!("{} is not valid JSON: {e}", path.display())))?;
    let Some(files) = manifest.get("files").and_then(Value::as_object) else {
        return model_error(format!("{} is not a model manifest (no 'files' mapping)", path.display()));
    };
    let Some(entry) = files.get(MODEL_ROLE) else {
        return model_error(format!("the manifest in {dir} has no '{MODEL_ROLE}' file"));
    };
    let text = |value: Option<&Value>, what: &str| -> Result<String, ModelError> {
        match value.and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(text.to_string()),
            _ => model_error(format!("{} has no {what} (a non-empty string)", path.display())),
        }
    };
    let classes = match manifest.get("classes").and_then(Value::as_array) {
        Some(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        _ => return model_error(format!("{} has no 'classes' (a list of class names)", path.display())),
    };
    Ok(Manifest {
        model_id: text(manifest.get("model_id"), "'model_id'")?,
        architecture: text(manifest.get("architecture"), "'architecture'")?,
        classes,
        model_path: directory.join(text(entry.get("path"), &format!("'files.{MODEL_ROLE}.path'"))?),
        model_sha256: text(entry.get("sha256"), &format!("'files.{MODEL_ROLE}.sha256'"))?,
        input_name: text(manifest.pointer("/input/name"), "'input.name'")?,
        output_name: text(manifest.pointer("/output/name"), "'output.name'")?,
    })
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The model file exists and has the sha256 the manifest records.
pub fn verify_model_file(manifest: &Manifest) -> Result<(), ModelError> {
    let path = &manifest.model_path;
    if !path.is_file() {
        return model_error(format!("{MODEL_ROLE} file missing: {}", path.display()));
    }
    let digest = sha256_file(path).map_err(|e| ModelError(format!("cannot read {}: {e}", path.display())))?;
    if !digest.eq_ignore_ascii_case(&manifest.model_sha256) {
        return model_error(format!(
            "{MODEL_ROLE} file {} does not match the sha256 in the manifest (corrupt or replaced)",
            path.display()
        ));
    }
    Ok(())
}

/// Load ONNX Runtime from the shared library at `dylib` (the `onnxruntime` wheel's `libonnxruntime.so`).
pub fn init_onnx_runtime(dylib: &Path) -> Result<Environment, ModelError> {
    if !dylib.is_file() {
        return model_error(format!("ONNX Runtime library not found at {} (set ORT_DYLIB_PATH)", dylib.display()));
    }
    let builder = ort::init_from(dylib)
        .map_err(|e| ModelError(format!("cannot load ONNX Runtime from {}: {e}", dylib.display())))?;
    builder
        .with_name(crate::SERVICE_NAME)
        .with_telemetry(false)
        .build()
        .map_err(|e| ModelError(format!("cannot create the ONNX Runtime environment: {e}")))
}

/// One session of the served model (see [`session_from_file`]), its signature checked against the manifest.
pub fn load_session(
    environment: &Environment,
    manifest: &Manifest,
    threads: usize,
    prepacked: &PrepackedWeights,
) -> Result<Session, ModelError> {
    let session = session_from_file(environment, &manifest.model_path, threads, prepacked)?;
    check_signature(&session, manifest)?;
    Ok(session)
}

/// One session: all graph optimizations (the model comes optimized offline without the layout transforms, which
/// depend on this CPU's vector width; they take about 7 ms here), `threads` intra-op threads, one
/// inter-op thread, as the Python ONNX service configures it; memory patterns off (see below).
fn session_from_file(
    environment: &Environment,
    path: &Path,
    threads: usize,
    prepacked: &PrepackedWeights,
) -> Result<Session, ModelError> {
    let cannot_load = |e: &dyn fmt::Display| ModelError(format!("ONNX Runtime cannot load {}: {e}", path.display()));
    let session = Session::builder(environment)
        .map_err(|e| cannot_load(&e))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| cannot_load(&e))?
        .with_intra_threads(threads)
        .map_err(|e| cannot_load(&e))?
        .with_inter_threads(1)
        .map_err(|e| cannot_load(&e))?
        .with_prepacked_weights(prepacked)
        .map_err(|e| cannot_load(&e))?
        // Memory patterns pre-plan one block per input shape; with images of any size they cost ~20 MB of
        // resident memory under load and gain nothing measurable here (results are identical either way).
        .with_memory_pattern(false)
        .map_err(|e| cannot_load(&e))?
        .commit_from_file(path)
        .map_err(|e| cannot_load(&e))?;
    Ok(session)
}

/// The model takes uint8 `[1, H, W, 3]` and gives float32 probabilities, one per class of the manifest.
fn check_signature(session: &Session, manifest: &Manifest) -> Result<(), ModelError> {
    let path = manifest.model_path.display();
    let describe = |dtype: &ValueType| match dtype {
        ValueType::Tensor { ty, shape, .. } => format!("{ty:?} {:?}", &shape[..]),
        other => format!("{other:?}"),
    };
    let found = || {
        session.inputs().iter().map(|i| format!("{}: {}", i.name(), describe(i.dtype()))).collect::<Vec<_>>().join(", ")
    };
    let input = session.inputs().iter().find(|i| i.name() == manifest.input_name);
    match input.map(|i| i.dtype()) {
        Some(ValueType::Tensor { ty: TensorElementType::Uint8, shape, .. }) if shape.len() == 4 => {}
        _ => {
            return model_error(format!(
                "{path} does not take uint8 [1, H, W, 3] input '{}' (found {}); export it with `model-serving export`",
                manifest.input_name,
                found()
            ));
        }
    }
    let output = session.outputs().iter().find(|o| o.name() == manifest.output_name);
    match output.map(|o| o.dtype()) {
        Some(ValueType::Tensor { ty: TensorElementType::Float32, shape, .. }) => {
            let classes = shape.last().copied().unwrap_or(-1);
            if classes >= 0 && classes as usize != manifest.classes.len() {
                return model_error(format!(
                    "{path} gives {classes} outputs but the manifest names {} classes",
                    manifest.classes.len()
                ));
            }
        }
        _ => {
            return model_error(format!("{path} has no float32 output '{}'", manifest.output_name));
        }
    }
    Ok(())
}

/// A session with its input and output names: decoded image → probabilities.
pub struct Predictor {
    session: Session,
    input_name: String,
    output_name: String,
}

impl Predictor {
    pub fn new(session: Session, manifest: &Manifest) -> Self {
        Predictor { session, input_name: manifest.input_name.clone(), output_name: manifest.output_name.clone() }
    }

    pub fn probabilities(&mut self, image: &RgbImage) -> Result<Vec<f32>, String> {
        let shape = [1usize, image.height, image.width, 3];
        let input = TensorRef::from_array_view((shape, image.pixels.as_slice())).map_err(|e| e.to_string())?;
        let outputs = self.session.run(ort::inputs![self.input_name.as_str() => input]).map_err(|e| e.to_string())?;
        let output = outputs.get(&self.output_name).ok_or_else(|| format!("no output '{}'", self.output_name))?;
        let (_, values) = output.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        Ok(values.to_vec())
    }
}

/// The served graph in its two parts, for the in-process bench's `preprocess` and `model` stages: the
/// preprocessing sub-graph (uint8 `[1, H, W, 3]` `image` → float32 `[1, 3, 224, 224]` `pixel_values`) and the
/// network (`pixel_values` → `probabilities`), sessions built as the served one's.
pub struct SplitModel {
    preprocess: Session,
    network: Session,
}

pub const SPLIT_IMAGE: &str = "image";
pub const SPLIT_PIXEL_VALUES: &str = "pixel_values";
pub const SPLIT_PROBABILITIES: &str = "probabilities";

impl SplitModel {
    pub fn load(
        environment: &Environment,
        preprocess: &Path,
        network: &Path,
        threads: usize,
    ) -> Result<SplitModel, ModelError> {
        let prepacked = PrepackedWeights::new();
        let preprocess_session = session_from_file(environment, preprocess, threads, &prepacked)?;
        check_names(&preprocess_session, preprocess, SPLIT_IMAGE, SPLIT_PIXEL_VALUES)?;
        let network_session = session_from_file(environment, network, threads, &prepacked)?;
        check_names(&network_session, network, SPLIT_PIXEL_VALUES, SPLIT_PROBABILITIES)?;
        Ok(SplitModel { preprocess: preprocess_session, network: network_session })
    }

    /// The decoded image → `pixel_values` (kept as ONNX Runtime's value, to be fed to [`Self::network`] as is).
    pub fn preprocess(&mut self, image: &RgbImage) -> Result<DynValue, String> {
        let shape = [1usize, image.height, image.width, 3];
        let input = TensorRef::from_array_view((shape, image.pixels.as_slice())).map_err(|e| e.to_string())?;
        let mut outputs = self.preprocess.run(ort::inputs![SPLIT_IMAGE => input]).map_err(|e| e.to_string())?;
        outputs.remove(SPLIT_PIXEL_VALUES).ok_or_else(|| format!("no output '{SPLIT_PIXEL_VALUES}'"))
    }

    /// `pixel_values` → probabilities.
    pub fn network(&mut self, pixel_values: &DynValue) -> Result<Vec<f32>, String> {
        let outputs = self.network.run(ort::inputs![SPLIT_PIXEL_VALUES => pixel_values]).map_err(|e| e.to_string())?;
        let output = outputs.get(SPLIT_PROBABILITIES).ok_or_else(|| format!("no output '{SPLIT_PROBABILITIES}'"))?;
        let (_, values) = output.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        Ok(values.to_vec())
    }
}

/// The session has an input `input` and an output `output` (their types are left to ONNX Runtime at run time).
fn check_names(session: &Session, path: &Path, input: &str, output: &str) -> Result<(), ModelError> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    if !inputs.contains(&input) || !outputs.contains(&output) {
        return model_error(format!(
            "{} does not map input '{input}' to output '{output}' (inputs {inputs:?}, outputs {outputs:?})",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("rust-onnx-serving-model-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        for (name, text) in files {
            std::fs::write(root.join(name), text).unwrap();
        }
        root
    }

    const MODEL_BYTES: &str = "not really onnx";

    fn manifest_json(sha: &str) -> String {
        serde_json::json!({
            "model_id": "abc",
            "architecture": "mobilenet_v3_small",
            "classes": ["a", "b"],
            "files": {"onnx_optimized": {"path": "model.optimized.onnx", "sha256": sha}},
            "input": {"name": "image"},
            "output": {"name": "probabilities"},
        })
        .to_string()
    }

    fn sha_of(text: &str) -> String {
        Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_good_folder_reads_and_verifies() {
        let dir =
            folder(&[("manifest.json", &manifest_json(&sha_of(MODEL_BYTES))), ("model.optimized.onnx", MODEL_BYTES)]);
        let manifest = read_manifest(&dir).unwrap();
        assert_eq!(manifest.model_id, "abc");
        assert_eq!(manifest.classes, vec!["a", "b"]);
        assert_eq!(manifest.model_path, dir.join("model.optimized.onnx"));
        assert_eq!((manifest.input_name.as_str(), manifest.output_name.as_str()), ("image", "probabilities"));
        verify_model_file(&manifest).unwrap();
    }

    #[test]
    fn bad_folders_are_named() {
        let message = |dir: &Path| read_manifest(dir).and_then(|m| verify_model_file(&m)).unwrap_err().0;
        let empty = folder(&[]);
        assert!(message(&empty).starts_with("no manifest.json in "), "{}", message(&empty));
        let not_json = folder(&[("manifest.json", "{oops")]);
        assert!(message(&not_json).contains("is not valid JSON"));
        let no_files = folder(&[("manifest.json", "[1, 2]")]);
        assert!(message(&no_files).contains("is not a model manifest (no 'files' mapping)"));
        let no_role = folder(&[("manifest.json", r#"{"files": {"onnx": {"path": "x", "sha256": "y"}}}"#)]);
        assert!(message(&no_role).contains("has no 'onnx_optimized' file"));
        let missing = folder(&[("manifest.json", &manifest_json(&sha_of(MODEL_BYTES)))]);
        assert!(message(&missing).starts_with("onnx_optimized file missing: "));
        let mismatch =
            folder(&[("manifest.json", &manifest_json(&sha_of("other"))), ("model.optimized.onnx", MODEL_BYTES)]);
        assert!(message(&mismatch).ends_with("does not match the sha256 in the manifest (corrupt or replaced)"));
        let no_classes = manifest_json("x").replace(r#"["a","b"]"#, "[]");
        assert!(message(&folder(&[("manifest.json", &no_classes)])).contains("'classes'"));
    }

    #[test]
    fn a_missing_runtime_library_is_named() {
        let error = init_onnx_runtime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(error.0.contains("ONNX Runtime library not found at /nonexistent/libonnxruntime.so"));
    }
}
