"""The one list of services, and the dependencies it implies: the ratios come from it, and what an image holds (its
packages, copied whole) never imports the harness."""

import ast
from pathlib import Path

import pytest

from model_serving.perf.config import load_thresholds
from model_serving.services import COLOURS, RATIO_PAIRS, REGISTRY, REPOSITORY_ROOT, SERVICES, Service, ratio_pairs

pytestmark = pytest.mark.unit

HARNESS = "model_serving"
SERVICE_PACKAGES = {"serving_common", "torch_serving", "onnx_serving"}


def _service(name: str, label: str) -> Service:
    return Service(name, label, 1, Path(), (), (), (), "#000000")


def test_ratios_put_each_service_over_the_ones_before_it():
    registry = (_service("a-serving", "a"), _service("b-serving", "b"), _service("c-serving", "c"))
    assert ratio_pairs(registry) == {
        "b_over_a": ("b-serving", "a-serving"),
        "c_over_b": ("c-serving", "b-serving"),
        "c_over_a": ("c-serving", "a-serving"),
    }
    assert ratio_pairs(registry[:1]) == {}


def test_the_suites_ratios_are_the_ones_its_thresholds_name():
    assert RATIO_PAIRS == {
        "onnx_over_torch": ("onnx-serving", "torch-serving"),
        "rust_over_onnx": ("rust-onnx-serving", "onnx-serving"),
        "rust_over_torch": ("rust-onnx-serving", "torch-serving"),
    }
    # <metric>.<ratio or service>.<min|max>
    named = {key.split(".")[1] for key in load_thresholds(REPOSITORY_ROOT / "pyproject.toml")}
    ratio_names = {name for name in named if "_over_" in name}
    assert ratio_names
    assert ratio_names <= set(RATIO_PAIRS)


def test_names_labels_ports_and_colours_are_distinct():
    for field in ("name", "label", "port", "colour"):
        values = [getattr(service, field) for service in REGISTRY]
        assert len(set(values)) == len(values), field
    assert list(SERVICES) == [service.name for service in REGISTRY]
    assert {service.name: service.colour for service in REGISTRY} == COLOURS


def _imported_roots(package: Path) -> set[str]:
    roots = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("service", [s for s in REGISTRY if s.kind == "python"], ids=lambda s: s.name)
def test_an_images_packages_are_whole_and_do_not_import_the_harness(service):
    names = {package.name for package in service.packages}
    assert "model_core" in names
    for package in service.packages:
        assert (package / "__init__.py").is_file()
        imported = _imported_roots(package)
        assert HARNESS not in imported, package
        # Whatever a package imports of ours is in the image too.
        assert imported & ({"model_core"} | SERVICE_PACKAGES) <= names, package


def test_model_core_is_at_the_bottom():
    imported = _imported_roots(REPOSITORY_ROOT / "services" / "model_core" / "model_core")
    assert "torch" in imported  # the walk does see imports
    assert not imported & ({HARNESS} | SERVICE_PACKAGES)
