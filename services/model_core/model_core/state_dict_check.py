"""Checking a state dict file before torch is imported: names and shapes of its tensors against the manifest's;
and the refusals a state dict file gets, here or when torch loads it (:mod:`model_core.loading`).

A service must refuse a bad model within 5 s, and importing torch alone takes 3–5 s on a small machine. So the
launcher reads the file's tensor names and shapes from the ``torch.save`` zip's pickle with a restricted
unpickler (it builds no tensors and runs no code: anything but an ordered dict of tensors is refused), and
compares them with ``state_dict_tensors`` in the manifest, recorded by the export from the model definition.
The app still loads the file with ``strict=True`` after this; the check only makes the refusal fast.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from model_core.errors import ModelError


def unreadable(name: str, error: Exception) -> ModelError:
    return ModelError(f"{name} is not a readable torch state dict ({error.__class__.__name__}: {error})")


def not_a_state_dict(name: str, held: object) -> ModelError:
    return ModelError(f"{name} holds a {type(held).__name__}, not a state dict (save model.state_dict())")


def misfit(name: str, classes: int, why: str) -> ModelError:
    return ModelError(f"{name} does not fit MobileNetV3-small with an {classes}-class head: {why}")


class _Tensor(NamedTuple):
    shape: tuple[int, ...]


class _Storage:
    """Stands for a storage class or instance: only the tensor's size is kept."""

    def __init__(self, *_: object) -> None:
        pass


def _rebuild_tensor(_storage: object, _offset: int, size: tuple[int, ...], *_: object) -> _Tensor:
    return _Tensor(tuple(int(n) for n in size))


class _ShapesUnpickler(pickle.Unpickler):
    _ALLOWED: Mapping[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _Storage
        raise pickle.UnpicklingError(f"holds {module}.{name}, which a state dict does not")

    def persistent_load(self, pid: Any) -> _Storage:
        return _Storage()


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape, read from a ``torch.save`` file without torch; ModelError if it is not a state dict."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ModelError(f"{path} is not a readable torch state dict (no data.pkl in the archive)")
            data = archive.read(pickles[0])
        loaded = _ShapesUnpickler(io.BytesIO(data)).load()
    except ModelError:
        raise
    except Exception as error:  # zipfile, pickle and our own refusals
        raise unreadable(str(path), error) from None
    if not isinstance(loaded, Mapping) or not all(isinstance(v, _Tensor) for v in loaded.values()):
        raise not_a_state_dict(str(path), loaded)
    return {str(name): tensor.shape for name, tensor in loaded.items()}


def check_state_dict_file(path: Path, manifest: Mapping[str, Any]) -> None:
    """The file's tensors have exactly the names and shapes the manifest records (when it records them)."""
    expected = manifest.get("state_dict_tensors")
    if not isinstance(expected, Mapping):
        return  # an older manifest: the strict load in the app is the only check
    found = tensor_shapes(path)
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_some(unexpected)}")
    for name, shape in expected.items():
        if name in found and list(found[name]) != list(shape):
            problems.append(
                f"size mismatch for {name}: the file has {list(found[name])}, the model needs {list(shape)}"
            )
    if problems:
        raise misfit(str(path), len(manifest.get("classes", [])), "; ".join(problems))


def _some(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def check_model_folder(model_dir: Path, manifest: Mapping[str, Any]) -> None:
    """The state dict of an artifact folder checked as above (torch-serving's launcher, which has verified the file's
    sha256 just before)."""
    check_state_dict_file(model_dir / manifest["files"]["state_dict"]["path"], manifest)
