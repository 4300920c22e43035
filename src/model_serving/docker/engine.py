"""The Docker engine: one client, and the host name under which published ports are reached."""

from __future__ import annotations

import os
from functools import cache
from urllib.parse import urlparse

import docker


class EngineError(Exception):
    """The Docker engine cannot be reached or refused an operation; the message says what to do."""


@cache
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=600)
        engine.ping()
    except docker.errors.DockerException as error:
        raise EngineError(
            f"cannot reach the Docker engine ({error}); start it, or set DOCKER_HOST to a reachable engine"
        ) from error
    return engine


def engine_host() -> str:
    """Where published container ports are reachable from here.

    ``MODEL_SERVING_ENGINE_HOST`` wins; a ``tcp://`` or ``ssh://`` ``DOCKER_HOST`` names the remote engine's
    host; a local socket means this machine's loopback (never the bridge gateway: load goes to loopback only).
    """
    override = os.environ.get("MODEL_SERVING_ENGINE_HOST")
    if override:
        return override
    parsed = urlparse(os.environ.get("DOCKER_HOST", ""))
    if parsed.scheme in ("tcp", "http", "https", "ssh") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"
