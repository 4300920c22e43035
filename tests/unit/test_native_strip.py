"""Stripping the extension modules of the wheels named in native.UNSTRIPPED, on a shared object compiled here."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from model_serving.docker import native

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("cc") is None or shutil.which("strip") is None, reason="needs cc and binutils"),
]


@pytest.fixture(scope="module")
def shared_object(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("so")
    (folder / "m.c").write_text("int answer(void) { return 42; }\n")
    subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", str(folder / "m.so"), str(folder / "m.c")], check=True)
    return (folder / "m.so").read_bytes()


def _wheel(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _sections(path: Path) -> str:
    return subprocess.run(["readelf", "-S", str(path)], capture_output=True, text=True, check=True).stdout


def test_only_the_named_wheels_modules_are_stripped(tmp_path, shared_object):
    wheels = [
        _wheel(
            tmp_path,
            "uvloop-0.23.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            {"uvloop/loop.cpython-311-x86_64-linux-gnu.so": shared_object, "uvloop/__init__.py": b"", "../up.so": b"x"},
        ),
        _wheel(tmp_path, "other-1.0-py3-none-any.whl", {"other/m.so": shared_object}),
    ]
    destination = tmp_path / "native"
    assert native.stripped_extension_modules(wheels, destination) == ["uvloop/loop.cpython-311-x86_64-linux-gnu.so"]
    stripped = destination / "uvloop" / "loop.cpython-311-x86_64-linux-gnu.so"
    assert ".debug_info" not in _sections(stripped)
    assert stripped.stat().st_size < len(shared_object)
    assert sorted(p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()) == [
        "uvloop/loop.cpython-311-x86_64-linux-gnu.so"
    ]


def test_the_compiled_object_has_symbols_to_strip(tmp_path, shared_object):
    # Else the test above would pass on an object with nothing to strip.
    path = tmp_path / "m.so"
    path.write_bytes(shared_object)
    assert ".debug_info" in _sections(path)


def test_no_matching_wheel_leaves_an_empty_folder(tmp_path, shared_object):
    wheel = _wheel(tmp_path, "other-1.0-py3-none-any.whl", {"other/m.so": shared_object})
    assert native.stripped_extension_modules([wheel], tmp_path / "native") == []
    assert (tmp_path / "native").is_dir()
    assert not any((tmp_path / "native").iterdir())


def test_a_file_strip_refuses_is_an_error_that_names_it(tmp_path):
    wheel = _wheel(tmp_path, "uvloop-0.23.0-cp311-cp311-manylinux_2_17_x86_64.whl", {"uvloop/loop.so": b"not elf"})
    with pytest.raises(native.StripError, match=re.escape("uvloop/loop.so of uvloop-0.23.0")):
        native.stripped_extension_modules([wheel], tmp_path / "native")


def test_a_missing_strip_says_what_to_install(tmp_path, monkeypatch, shared_object):
    monkeypatch.setattr(native.shutil, "which", lambda _: None)
    wheel = _wheel(tmp_path, "uvloop-0.23.0-cp311-cp311-manylinux_2_17_x86_64.whl", {"uvloop/m.so": shared_object})
    with pytest.raises(native.StripError, match="apt-get install binutils"):
        native.stripped_extension_modules([wheel], tmp_path / "native")
