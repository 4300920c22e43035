"""Image building without Docker: content hashing, context assembly, wheel caching, base-image choice and the
build/reuse decision, against a fake engine."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path

import docker
import pytest

from model_core.errors import ModelError
from model_serving.docker import base, build, wheels
from model_serving.docker.build import BuiltImage, ImageBuildError
from model_serving.services import SERVICES, Service

pytestmark = pytest.mark.unit


# --- a fake engine: just the calls the modules make ---------------------------------------------------------


class FakeImage:
    def __init__(self, image_id: str, size: float = 123e6) -> None:
        self.id = image_id
        self.attrs = {"Size": size}
        self.tags: list[str] = []

    def tag(self, repository, tag):
        self.tags.append(f"{repository}:{tag}")
        return True


class FakeImages:
    def __init__(self, present=(), pullable=()) -> None:
        self.present = {name: FakeImage(f"sha256:{name}") for name in present}
        self.pullable = set(pullable)
        self.pulls: list[str] = []

    def get(self, name):
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return self.present[name]

    def pull(self, repository, tag=None):
        reference = f"{repository}:{tag}"
        self.pulls.append(reference)
        if reference not in self.pullable:
            raise docker.errors.APIError("Get https://registry-1.docker.io/v2/: no registry")
        self.present[reference] = FakeImage(f"sha256:pulled-{reference}")


class FakeApi:
    def __init__(self, images: FakeImages, stream=()) -> None:
        self.images = images
        self.stream = list(stream)
        self.builds: list[dict] = []
        self.imports: list[dict] = []

    def build(self, **kwargs):
        self.builds.append(kwargs)
        assert Path(kwargs["path"], "Dockerfile").is_file()  # the context exists while the engine reads it
        for chunk in self.stream:
            yield chunk
            if "error" in chunk:
                return
        self.images.present[kwargs["tag"]] = FakeImage("sha256:new")

    def import_image_from_file(self, filename, repository=None, tag=None, changes=None):
        assert Path(filename).is_file()
        self.imports.append({"repository": repository, "tag": tag, "changes": changes})
        self.images.present[f"{repository}:{tag}"] = FakeImage("sha256:imported")


class FakeClient:
    def __init__(self, present=(), pullable=(), stream=()) -> None:
        self.images = FakeImages(present, pullable)
        self.api = FakeApi(self.images, stream)


# --- fixtures -----------------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    contents = {"state_dict": b"weights", "onnx": b"graph", "onnx_optimized": b"optimized graph"}
    names = {"state_dict": "state_dict.pt", "onnx": "model.onnx", "onnx_optimized": "model.optimized.onnx"}
    for role, data in contents.items():
        (folder / names[role]).write_bytes(data)
    manifest = {
        "model_id": "m" * 64,
        "files": {role: {"path": names[role], "sha256": _sha(data)} for role, data in contents.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def spec(tmp_path: Path) -> Service:
    service = tmp_path / "services" / "demo"
    package = service / "demo_serving"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("print('hi')\n")
    (package / "__pycache__" / "__main__.cpython-311.pyc").write_bytes(b"stale")
    (service / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11-slim-bookworm\nFROM ${BASE_IMAGE}\n")
    (service / "requirements.txt").write_text("fastapi==0.165.0\n")
    return Service(
        name="demo",
        label="demo",
        port=8099,
        directory=service,
        packages=(package,),
        model_roles=("onnx_optimized",),
        bench_command=("python", "-m", "demo_serving"),
        colour="#000000",
    )


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "fastapi-0.165.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    (folder / wheels.COMPLETE_MARKER).write_text(json.dumps({"wheels": ["fastapi-0.165.0-py3-none-any.whl"]}))
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(wheels.CACHE_ENV, str(folder))
    return folder


# --- content hashing ----------------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_content_hash_ignores_times_modes_and_creation_order(tmp_path):
    first = _tree(tmp_path / "a", {"Dockerfile": b"FROM x", "app/p/__init__.py": b"", "model/m.onnx": b"1"})
    second = _tree(tmp_path / "b", {"model/m.onnx": b"1", "app/p/__init__.py": b"", "Dockerfile": b"FROM x"})
    os.utime(second / "Dockerfile", (0, 0))
    (second / "model" / "m.onnx").chmod(0o600)
    assert build.content_hash(first, "sha256:base") == build.content_hash(second, "sha256:base")


@pytest.mark.parametrize(
    "change",
    [
        {"model/m.onnx": b"2"},  # bytes
        {"model/n.onnx": b"1"},  # an extra file
        {"Dockerfile": b"FROM y"},
    ],
)
def test_content_hash_changes_with_content(tmp_path, change):
    files = {"Dockerfile": b"FROM x", "model/m.onnx": b"1"}
    reference = build.content_hash(_tree(tmp_path / "a", files), "sha256:base")
    assert build.content_hash(_tree(tmp_path / "b", {**files, **change}), "sha256:base") != reference


def test_content_hash_changes_with_a_renamed_file_and_with_the_base(tmp_path):
    original = _tree(tmp_path / "a", {"model/m.onnx": b"1"})
    renamed = _tree(tmp_path / "b", {"model/n.onnx": b"1"})
    assert build.content_hash(original, "sha256:base") != build.content_hash(renamed, "sha256:base")
    assert build.content_hash(original, "sha256:base") != build.content_hash(original, "sha256:other")


def test_content_hash_does_not_confuse_names_with_bytes(tmp_path):
    # "ab" holding "c" and "a" holding "bc" must not hash alike.
    first = _tree(tmp_path / "a", {"ab": b"c"})
    second = _tree(tmp_path / "b", {"a": b"bc"})
    assert build.content_hash(first, "x") != build.content_hash(second, "x")


# --- context assembly ---------------------------------------------------------------------------------------


def test_context_holds_exactly_what_goes_in(tmp_path, spec, model_dir, wheel_dir):
    context = tmp_path / "context"
    context.mkdir()
    assert build.assemble_context(spec, model_dir, wheel_dir, context) == "m" * 64
    files = sorted(path.relative_to(context).as_posix() for path in context.rglob("*") if path.is_file())
    assert files == [
        "Dockerfile",
        "app/demo_serving/__init__.py",
        "app/demo_serving/__main__.py",
        "model/manifest.json",
        "model/model.optimized.onnx",  # only the role the service reads
        "requirements.txt",
        "wheels/fastapi-0.165.0-py3-none-any.whl",  # the marker file stays in the cache
    ]
    linked = context / "wheels" / "fastapi-0.165.0-py3-none-any.whl"
    assert linked.stat().st_ino == (wheel_dir / linked.name).stat().st_ino  # hard link, not a copy


def test_context_refuses_a_corrupt_model(tmp_path, spec, model_dir, wheel_dir):
    (model_dir / "model.optimized.onnx").write_bytes(b"replaced")
    context = tmp_path / "context"
    context.mkdir()
    with pytest.raises(ModelError, match="sha256"):
        build.assemble_context(spec, model_dir, wheel_dir, context)


def test_context_refuses_a_missing_package(tmp_path, spec, model_dir, wheel_dir):
    (spec.packages[0] / "__init__.py").unlink()
    context = tmp_path / "context"
    context.mkdir()
    with pytest.raises(ImageBuildError, match="demo_serving"):
        build.assemble_context(spec, model_dir, wheel_dir, context)


# --- build or reuse -----------------------------------------------------------------------------------------


@pytest.fixture
def demo(monkeypatch, spec, wheel_dir, cache):
    monkeypatch.setitem(SERVICES, "demo", spec)
    monkeypatch.setattr(build, "ensure_wheels", lambda requirements: wheel_dir)

    def use(engine: FakeClient) -> FakeClient:
        monkeypatch.setattr(build, "client", lambda: engine)
        return engine

    return use


def _contexts_left(cache: Path) -> list[Path]:
    return list((cache / "contexts").iterdir())


def test_build_when_the_tag_is_new(demo, model_dir, cache, caplog):
    stream = [{"stream": "Step 1/2 : FROM base\n"}, {"stream": " ---> abc\nStep 2/2 : CMD x\n"}]
    engine = demo(FakeClient(present=["base:1"], stream=stream))
    with caplog.at_level(logging.INFO, logger="model_serving"):
        result = build.build_service_image("demo", model_dir, base_image="base:1")
    messages = caplog.messages
    assert result.built
    assert re.fullmatch(r"model-serving/demo:[0-9a-f]{12}", result.tag)
    (call,) = engine.api.builds
    assert call["tag"] == result.tag
    assert call["buildargs"] == {"BASE_IMAGE": "base:1"}
    assert call["labels"][build.MODEL_ID_LABEL] == "m" * 64
    assert call["labels"][build.CONTENT_HASH_LABEL].startswith(result.tag.split(":")[1])
    assert engine.images.present[result.tag].tags == ["model-serving/demo:latest"]
    assert sum("Step" in message for message in messages) == 2
    assert _contexts_left(cache) == []


def test_reuse_when_the_tag_exists(demo, model_dir, cache):
    first = demo(FakeClient(present=["base:1"]))
    tag = build.build_service_image("demo", model_dir, base_image="base:1").tag
    second = demo(FakeClient(present=["base:1", tag]))
    result = build.build_service_image("demo", model_dir, base_image="base:1")
    assert result == BuiltImage("demo", tag, f"sha256:{tag}", 123.0, built=False)
    assert second.api.builds == []
    assert second.images.present[tag].tags == ["model-serving/demo:latest"]
    assert len(first.api.builds) == 1
    assert _contexts_left(cache) == []


def test_another_base_means_another_tag(demo, model_dir):
    engine = demo(FakeClient(present=["base:1", "base:2"]))
    one = build.build_service_image("demo", model_dir, base_image="base:1")
    two = build.build_service_image("demo", model_dir, base_image="base:2")
    assert one.tag != two.tag
    assert len(engine.api.builds) == 2


def test_a_failed_build_carries_the_log_tail_and_cleans_up(demo, model_dir, cache):
    stream = [
        {"stream": "Step 6/20 : RUN pip install\n"},
        {"stream": "ERROR: No matching distribution found for torch==2.13.0\n"},
        {"error": "The command '/bin/sh -c pip install' returned a non-zero code: 1"},
    ]
    engine = demo(FakeClient(present=["base:1"], stream=stream))
    with pytest.raises(ImageBuildError, match=r"non-zero code(.|\n)*No matching distribution"):
        build.build_service_image("demo", model_dir, base_image="base:1")
    assert not any(name.startswith("model-serving/demo") for name in engine.images.present)
    assert _contexts_left(cache) == []


def test_unknown_service():
    with pytest.raises(ValueError, match="torch-serving"):
        build.build_service_image("tensorflow-serving")


# --- the Dockerfiles keep the contract ----------------------------------------------------------------------


def test_a_corrupt_file_the_service_does_not_read_is_left_out(tmp_path, spec, model_dir, wheel_dir):
    (model_dir / "state_dict.pt").write_bytes(b"replaced")
    context = tmp_path / "context"
    context.mkdir()
    build.assemble_context(spec, model_dir, wheel_dir, context)
    assert sorted(p.name for p in (context / "model").iterdir()) == ["manifest.json", "model.optimized.onnx"]


@pytest.mark.parametrize("service", sorted(name for name, spec in SERVICES.items() if spec.kind == "python"))
def test_dockerfile_contract(service):
    spec = SERVICES[service]
    lines = [line for line in (spec.directory / "Dockerfile").read_text().splitlines() if not line.startswith("#")]
    instructions = [line for line in lines if line and not line.startswith(" ")]
    assert instructions[0] == f"ARG BASE_IMAGE={base.PUBLIC_BASE_IMAGE}"
    assert sum(line.startswith("FROM ${BASE_IMAGE}") for line in instructions) == 2
    assert f"EXPOSE {spec.port}" in instructions
    assert "USER 10001:10001" in instructions
    module = spec.packages[0].name
    assert f'CMD ["python", "-m", "{module}"]' in instructions
    text = "\n".join(lines)
    for buildkit_only in ("--mount", "<<"):  # the classic builder has neither
        assert buildkit_only not in text
    for setting in (f"PORT={spec.port}", "MODEL_DIR=/opt/model", "PYTHONPATH=/app"):
        assert setting in text


# --- wheels -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ("fastapi==0.165.0\ntorch==2.13.0\n", ["torch==2.13.0+cpu"]),
        ("torch == 2.13.0  # CPU build\n", ["torch==2.13.0+cpu"]),
        ("torch==2.13.0+cpu\n", []),  # already explicit
        ("torch>=2\n", []),  # not an exact pin: left alone
        ("torchaudio==2.13.0\nfastapi==0.165.0\n", []),
    ],
)
def test_cpu_torch_constraints(requirements, expected):
    assert wheels.cpu_torch_constraints(requirements) == expected


def test_cache_key_follows_the_requirements():
    assert wheels.cache_key("a==1\n") == wheels.cache_key("a==1\n")
    assert wheels.cache_key("a==1\n") != wheels.cache_key("a==2\n")


def test_platform_arguments_target_the_image():
    arguments = wheels.platform_args()
    assert "--only-binary=:all:" in arguments
    assert arguments[arguments.index("--abi") + 1] == "cp311"
    assert "manylinux2014_x86_64" in arguments


def test_incomplete_download_is_not_reused(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a-1-py3-none-any.whl").write_bytes(b"")
    assert wheels.complete_wheels(folder) is None  # no marker
    (folder / wheels.COMPLETE_MARKER).write_text(json.dumps({"wheels": ["a-1-py3-none-any.whl", "b.whl"]}))
    assert wheels.complete_wheels(folder) is None  # a listed wheel is missing
    (folder / "b.whl").write_bytes(b"")
    assert [path.name for path in wheels.complete_wheels(folder)] == ["a-1-py3-none-any.whl", "b.whl"]


def test_wheels_are_downloaded_once_then_reused(tmp_path, cache, monkeypatch):
    calls: list[Path] = []

    def fake_download(requirements: str, destination: Path) -> None:
        calls.append(destination)
        (destination / "fastapi-0.165.0-py3-none-any.whl").write_bytes(b"wheel")

    monkeypatch.setattr(wheels, "_pip_download", fake_download)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.165.0\n")
    first = wheels.ensure_wheels(requirements)
    second = wheels.ensure_wheels(requirements)
    assert first == second == cache / "wheels" / wheels.cache_key("fastapi==0.165.0\n")
    assert len(calls) == 1
    assert sorted(path.name for path in first.iterdir()) == [wheels.COMPLETE_MARKER, "fastapi-0.165.0-py3-none-any.whl"]
    assert sorted(path.name for path in (cache / "wheels").iterdir()) == [first.name]  # no staging left


def test_a_failed_download_leaves_nothing(tmp_path, cache, monkeypatch):
    def failing(requirements: str, destination: Path) -> None:
        (destination / "half.whl").write_bytes(b"")
        raise wheels.WheelError("pip download failed")

    monkeypatch.setattr(wheels, "_pip_download", failing)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch==2.13.0\n")
    with pytest.raises(wheels.WheelError):
        wheels.ensure_wheels(requirements)
    assert list((cache / "wheels").iterdir()) == []


def test_pip_failure_names_the_fix(tmp_path, monkeypatch):
    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: No matching distribution found for torch==2.13.0+cpu\n"

    monkeypatch.setattr(wheels.subprocess, "run", lambda *args, **kwargs: Failed())
    with pytest.raises(wheels.WheelError, match=r"PIP_FIND_LINKS(.|\n)*torch==2.13.0\+cpu"):
        wheels._pip_download("torch==2.13.0\n", tmp_path)


def test_cache_dir_respects_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(wheels.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert wheels.cache_dir() == tmp_path / "xdg" / "model-serving"
    monkeypatch.setenv(wheels.CACHE_ENV, str(tmp_path / "mine"))
    assert wheels.cache_dir() == tmp_path / "mine"


# --- base image choice --------------------------------------------------------------------------------------


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv(base.OVERRIDE_ENV, raising=False)


@pytest.fixture
def local_builds(monkeypatch) -> list[str]:
    """Stands in for mmdebstrap + import; records the tags it was asked to build."""
    built: list[str] = []

    def fake(tag, engine):
        built.append(tag)
        engine.images.present[tag] = FakeImage("sha256:local")

    monkeypatch.setattr(base, "build_local_base", fake)
    return built


def test_public_image_present_is_used(no_override, local_builds):
    engine = FakeClient(present=[base.PUBLIC_BASE_IMAGE])
    assert base.ensure_base_image(engine) == base.PUBLIC_BASE_IMAGE
    assert engine.images.pulls == []
    assert local_builds == []


def test_public_image_pulled_when_possible(no_override, local_builds):
    engine = FakeClient(pullable=[base.PUBLIC_BASE_IMAGE])
    assert base.ensure_base_image(engine) == base.PUBLIC_BASE_IMAGE
    assert engine.images.pulls == [base.PUBLIC_BASE_IMAGE]
    assert local_builds == []


def test_local_base_built_once_without_a_registry(no_override, local_builds, caplog):
    engine = FakeClient()
    with caplog.at_level(logging.INFO, logger="model_serving"):
        first = base.ensure_base_image(engine)
        second = base.ensure_base_image(engine)
    messages = caplog.messages
    assert first == second == base.local_base_tag()
    assert local_builds == [first]
    assert any("cannot pull" in message for message in messages)


def test_override_wins(monkeypatch, local_builds):
    monkeypatch.setenv(base.OVERRIDE_ENV, "mine:1")
    engine = FakeClient(present=["mine:1", base.PUBLIC_BASE_IMAGE])
    assert base.ensure_base_image(engine) == "mine:1"
    assert local_builds == []


def test_override_that_cannot_be_had_is_an_error(monkeypatch, local_builds):
    monkeypatch.setenv(base.OVERRIDE_ENV, "mine:1")
    with pytest.raises(base.BaseImageError, match=base.OVERRIDE_ENV):
        base.ensure_base_image(FakeClient(present=[base.PUBLIC_BASE_IMAGE]))
    assert local_builds == []


def test_missing_mmdebstrap_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    with pytest.raises(base.BaseImageError, match="apt-get install mmdebstrap"):
        base.build_local_base(base.local_base_tag(), FakeClient())


@pytest.mark.parametrize("fails", [False, True])
def test_local_base_build_cleans_its_temporary_files(tmp_path, monkeypatch, fails):
    monkeypatch.setattr(base.shutil, "which", lambda name: "/usr/bin/mmdebstrap")
    monkeypatch.setattr(base.tempfile, "tempdir", str(tmp_path))

    def fake_mmdebstrap(tarball: Path, log: Path) -> None:
        tarball.write_bytes(b"rootfs")
        if fails:
            raise base.BaseImageError("mmdebstrap failed")

    monkeypatch.setattr(base, "_run_mmdebstrap", fake_mmdebstrap)
    engine = FakeClient()
    tag = base.local_base_tag()
    if fails:
        with pytest.raises(base.BaseImageError):
            base.build_local_base(tag, engine)
    else:
        base.build_local_base(tag, engine)
        (imported,) = engine.api.imports
        assert f"{imported['repository']}:{imported['tag']}" == tag
        assert any(change.startswith("ENV PATH=") for change in imported["changes"])
    assert list(tmp_path.iterdir()) == []


def test_recipe_decides_the_local_tag():
    assert re.fullmatch(r"model-serving/base:bookworm-py311-[0-9a-f]{12}", base.local_base_tag())
    command = base.mmdebstrap_command(Path("out.tar"))
    assert command[-2:] == ["bookworm", "out.tar"]
    assert any(argument.startswith("--include=") and "python3-venv" in argument for argument in command)


def test_rust_dockerfile_contract():
    spec = SERVICES["rust-onnx-serving"]
    text = (spec.directory / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM scratch"  # nothing to pull, nothing but what the context holds
    assert "USER 10001:10001" in instructions
    assert f"EXPOSE {spec.port}" in instructions
    assert any(line.startswith("HEALTHCHECK") and "--healthcheck" in line for line in instructions)
    for buildkit_only in ("--mount", "<<"):
        assert buildkit_only not in text


# --- the usual implementations' images ------------------------------------------------------------------------


def test_a_usual_python_image_is_a_layer_over_the_strategys_image(monkeypatch, model_dir, cache):
    from model_serving.usual import build as usual_build

    engine = FakeClient()
    monkeypatch.setattr(usual_build, "client", lambda: engine)
    ours = BuiltImage("torch-serving", "model-serving/torch-serving:abc", "sha256:ours", 835.0, built=False)
    seen: list[list[str]] = []
    real_build = engine.api.build

    def recording_build(**kwargs):
        seen.append(sorted(p.name for p in Path(kwargs["path"]).iterdir()))
        yield from real_build(**kwargs)

    engine.api.build = recording_build
    first = usual_build.build_usual_image("torch-serving", model_dir, service_image=ours)
    assert first.built
    assert first.service == "torch-usual"
    assert first.tag.startswith("model-serving/torch-usual:")
    assert engine.api.builds[0]["buildargs"] == {"BASE_IMAGE": ours.tag}
    assert seen == [["Dockerfile", "model", "usual_torch.py"]]
    again = usual_build.build_usual_image("torch-serving", model_dir, service_image=ours)
    assert (again.tag, again.built) == (first.tag, False)
    other = BuiltImage("torch-serving", "model-serving/torch-serving:def", "sha256:other", 835.0, built=False)
    rebuilt = usual_build.build_usual_image("torch-serving", model_dir, service_image=other)
    assert rebuilt.tag != first.tag  # a new service image means a new usual image
    assert _contexts_left(cache) == []


def test_no_usual_onnx_image_without_the_network_sub_graph(monkeypatch, model_dir, cache):
    from model_serving.usual import build as usual_build

    monkeypatch.setattr(usual_build, "client", lambda: FakeClient())
    ours = BuiltImage("onnx-serving", "model-serving/onnx-serving:abc", "sha256:ours", 240.0, built=False)
    with pytest.raises(usual_build.UsualUnavailable, match="no network sub-graph"):
        usual_build.build_usual_image("onnx-serving", model_dir, service_image=ours)
    assert _contexts_left(cache) == []


def test_the_rust_image_is_built_beside_the_python_ones_and_the_python_ones_in_turn(monkeypatch):
    # Each kind's first build waits for the other's: built one after the other, the barrier would time out.
    both_started = threading.Barrier(2, timeout=10)
    calls: list[tuple[str, str, bool]] = []

    def fake(service: str, model_dir: Path, tag_latest: bool = True) -> BuiltImage:
        if service in ("torch-serving", "rust-onnx-serving"):
            both_started.wait()
        calls.append((service, threading.current_thread().name, tag_latest))
        return BuiltImage(service, f"model-serving/{service}:x", "sha256:x", 1.0, True)

    monkeypatch.setattr(build, "build_service_image", fake)
    names = ["rust-onnx-serving", "torch-serving", "onnx-serving"]
    images = build.build_service_images(names, Path("model"), tag_latest=False)
    assert list(images) == names
    assert all(images[name].service == name for name in names)
    thread = {service: name for service, name, _ in calls}
    assert thread["torch-serving"] == thread["onnx-serving"] != thread["rust-onnx-serving"]
    assert [service for service, *_ in calls if service != "rust-onnx-serving"] == ["torch-serving", "onnx-serving"]
    assert not any(tag_latest for *_, tag_latest in calls)


def test_building_images_of_an_unknown_service_is_refused_before_any_build(monkeypatch):
    monkeypatch.setattr(build, "build_service_image", lambda *args, **kwargs: pytest.fail("built"))
    with pytest.raises(ValueError, match="'tensorflow-serving'; known: torch-serving"):
        build.build_service_images(["torch-serving", "tensorflow-serving"])
