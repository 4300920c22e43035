import zipfile

import pytest

from model_serving.docker.rust_context import RustBuildError, extract_ort_library, parse_ldd, source_hash

pytestmark = pytest.mark.unit

LDD = """\
\tlinux-vdso.so.1 (0x00007efe8a60d000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007efe8a5f7000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007efe88000000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007efe87e1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007efe8a60f000)
"""


def test_parse_ldd_keeps_resolved_libraries_and_the_loader():
    assert [str(p) for p in parse_ldd(LDD)] == [
        "/lib/x86_64-linux-gnu/libdl.so.2",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]


def test_parse_ldd_refuses_a_missing_library():
    with pytest.raises(RustBuildError, match="libturbojpeg"):
        parse_ldd(LDD + "\tlibturbojpeg.so.0 => not found\n")


def test_extract_ort_library_from_the_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "onnxruntime-1.32.0-cp311-cp311-manylinux_2_27_x86_64.whl", "w") as wheel:
        wheel.writestr("onnxruntime/capi/libonnxruntime.so.1.32.0", b"\x7fELF library")
        wheel.writestr("onnxruntime/capi/onnxruntime_pybind11_state.so", b"other")
    target = tmp_path / "libonnxruntime.so"
    assert extract_ort_library(wheels, target) == "1.32.0"
    assert target.read_bytes() == b"\x7fELF library"


def test_extract_ort_library_needs_exactly_one_wheel(tmp_path):
    with pytest.raises(RustBuildError, match="expected one onnxruntime wheel"):
        extract_ort_library(tmp_path, tmp_path / "lib.so")


def test_source_hash_follows_sources_not_tests(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "Cargo.toml").write_text("[package]\n")
    (tmp_path / "src" / "main.rs").write_text("fn main() {}\n")
    first = source_hash(tmp_path)
    (tmp_path / "tests" / "t.rs").write_text("// a test\n")
    assert source_hash(tmp_path) == first
    (tmp_path / "src" / "main.rs").write_text("fn main() { }\n")
    assert source_hash(tmp_path) != first
