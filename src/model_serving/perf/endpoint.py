"""What the load measurements need of a service: its name (its API, metrics labels and ports are the service's)
and the URL it answers at. A container the suite started (docker.containers.RunningService) is one; so is a service
already running elsewhere (perf/target.TargetService, ``--target``)."""

from __future__ import annotations

from typing import Protocol


class Endpoint(Protocol):
    @property
    def service(self) -> str:
        """The service's name (torch-serving, onnx-serving, rust-onnx-serving)."""
        ...

    @property
    def base_url(self) -> str:
        """``http://host:port`` (or with a path prefix), without a trailing slash."""
        ...
