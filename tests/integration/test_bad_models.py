"""A missing, corrupt or mismatched model: the service exits non-zero within 5 s, saying what is wrong.

Each case prepares a model folder from the default artifacts, copies it into a created (not yet started) container
at ``/opt/model-under-test`` with ``put_archive`` (so it works with a remote engine too, where a bind mount of a
local folder would not) and points ``MODEL_DIR`` at it. The run time is the engine's (process start to exit).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable

import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from model_core.mobilenet import MobileNetV3Small
from model_serving.docker.containers import created_container, run_time_s, wait_for_exit
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

EXIT_WITHIN_S = 5.0
MODEL_DIR = "/opt/model-under-test"
#: The manifest role of the file each service reads.
ROLE = {"torch-serving": "state_dict", "onnx-serving": "onnx_optimized", "rust-onnx-serving": "onnx_optimized"}

Files = dict[str, bytes]


def _upstream_like_onnx() -> bytes:
    """A valid ONNX classifier taking float32 NCHW ``[1, 3, 224, 224]`` (as upstream's did), 1000 classes."""
    weights = numpy_helper.from_array(torch.ones(3, 1000).numpy(), "weights")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"]),
            helper.make_node("MatMul", ["features", "weights"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "upstream_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 1000])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _imagenet_head_state_dict() -> bytes:
    """A valid MobileNetV3-small state dict with torchvision's 1000-class head."""
    buffer = io.BytesIO()
    torch.save(MobileNetV3Small(num_classes=1000).state_dict(), buffer)
    return buffer.getvalue()


def _with_file(manifest: dict, role: str, data: bytes) -> Files:
    """The manifest recording ``data`` (with its correct sha256) as the ``role`` file, and that file."""
    manifest = copy.deepcopy(manifest)
    manifest["files"][role]["sha256"] = hashlib.sha256(data).hexdigest()
    return {"manifest.json": json.dumps(manifest).encode(), manifest["files"][role]["path"]: data}


def _missing_folder(manifest: dict, role: str, data: bytes) -> Files | None:
    return None


def _missing_file(manifest: dict, role: str, data: bytes) -> Files | None:
    return {"manifest.json": json.dumps(manifest).encode()}


def _corrupt(manifest: dict, role: str, data: bytes) -> Files | None:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF  # one byte: the sha256 no longer matches the manifest's
    return {"manifest.json": json.dumps(manifest).encode(), manifest["files"][role]["path"]: bytes(damaged)}


def _unreadable(manifest: dict, role: str, data: bytes) -> Files | None:
    return _with_file(manifest, role, b"this is not a model\n" * 64)


def _mismatched(manifest: dict, role: str, data: bytes) -> Files | None:
    return _with_file(manifest, role, _imagenet_head_state_dict() if role == "state_dict" else _upstream_like_onnx())


#: case → (how the folder is made, what the message must say per service; {dir} and {file} are filled in)
CASES: dict[str, tuple[Callable[[dict, str, bytes], Files | None], dict[str, tuple[str, ...]]]] = {
    "missing-folder": (_missing_folder, dict.fromkeys(SERVICE_NAMES, ("no manifest.json in {dir}",))),
    "missing-file": (_missing_file, dict.fromkeys(SERVICE_NAMES, ("{role} file missing: {file}",))),
    "corrupt": (
        _corrupt,
        dict.fromkeys(SERVICE_NAMES, ("{role} file {file} does not match the sha256 in the manifest (corrupt",)),
    ),
    "unreadable": (
        _unreadable,
        {
            "torch-serving": ("{file} is not a readable torch state dict",),
            "onnx-serving": ("ONNX Runtime cannot load {file}",),
            "rust-onnx-serving": ("ONNX Runtime cannot load {file}",),
        },
    ),
    "mismatched": (
        _mismatched,
        {
            "torch-serving": (
                "{file} does not fit MobileNetV3-small with an 11-class head",
                "size mismatch for classifier.3.weight",
                "[1000, 1024]",
            ),
            "onnx-serving": ("{file} does not take uint8 [1, H, W, 3] input 'image'", "[1, 3, 224, 224]"),
            "rust-onnx-serving": ("{file} does not take uint8 [1, H, W, 3] input 'image'", "[1, 3, 224, 224]"),
        },
    ),
}


def _tar(folder: str, files: Files) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo(folder)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, data in files.items():
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size, member.mode = len(data), 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _check(service_images, cpus, default_artifacts, name: str, case: str, workers: int) -> None:
    make, expectations = CASES[case]
    manifest = default_artifacts.manifest
    role = ROLE[name]
    file_name = manifest["files"][role]["path"]
    files = make(manifest, role, (default_artifacts.directory / file_name).read_bytes())
    env = {"MODEL_DIR": MODEL_DIR, "WORKERS": str(workers)}
    with created_container(name, service_images[name].tag, cpus, env=env) as container:
        if files is not None:
            container.put_archive("/opt", _tar(MODEL_DIR.removeprefix("/opt/"), files))
        started = time.perf_counter()
        container.start()
        exit_code = wait_for_exit(container, timeout_s=60)
        waited = time.perf_counter() - started
        ran = run_time_s(container)
        logs = container.logs().decode(errors="replace")
    print(f"\n{name} {case} WORKERS={workers}: exit {exit_code} after {ran} s (engine), {waited:.2f} s (observed)")
    print("  " + "\n  ".join(line for line in logs.splitlines() if "cannot start" in line))
    assert exit_code is not None, f"still running after 60 s:\n{logs}"
    assert exit_code != 0, logs
    assert ran is not None
    assert ran < EXIT_WITHIN_S, logs
    values = {"dir": MODEL_DIR, "file": f"{MODEL_DIR}/{file_name}", "role": role}
    message = next((line for line in logs.splitlines() if line.startswith(f"{name}: cannot start: ")), None)
    assert message is not None, f"no '{name}: cannot start: ...' line in the logs:\n{logs}"
    for fragment in expectations[name]:
        assert fragment.format(**values) in logs[logs.index(message) :], logs
    # One message, not a traceback: what is wrong is all the log says after the configuration line.
    assert "Traceback" not in logs, logs


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_bad_model_exits_non_zero_within_5_s_naming_the_problem(service_images, cpus, default_artifacts, name, case):
    _check(service_images, cpus, default_artifacts, name, case, workers=1)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_mismatched_model_with_two_workers(service_images, cpus, default_artifacts, name):
    """The Python services load the model in each worker; with several the supervisor must still exit non-zero."""
    _check(service_images, cpus, default_artifacts, name, "mismatched", workers=2)
