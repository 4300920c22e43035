"""Graceful shutdown: SIGTERM under load lets in-flight requests finish, refuses new ones, and the process exits 0.

Each case starts a container under the CPU limit and, before the signal, puts two kinds of requests in flight:

- ``LOAD_REQUESTS`` POSTs of the benchmark payload at once, each on its own connection (opened beforehand, so
  the POSTs need no new connection), signalled ``LOAD_HEAD_START_S`` after they were sent: the service is busy;
- one *slow* POST whose headers and first half of the body are sent before the signal and the second half only
  once the service has refused a new connection: deterministically in flight across the whole shutdown.

Then: every one of them is answered 200; new connections, probed every ``PROBE_INTERVAL_S`` from the signal on,
are refused (reset, closed or not accepted) or answered non-2xx, never left hanging: refused within
``REFUSE_WITHIN_S``, and none is served from ``SETTLE_S`` after the first refusal on; the container exits with
code 0 within ``SHUTDOWN_BOUND_S``. Connections go through the engine's published port: with Docker's userland
proxy a refused connection shows as one accepted and then closed without a response, which counts as refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from model_serving.docker.containers import run_service, wait_for_exit
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

#: The services give in-flight requests up to 30 s after SIGTERM; exiting must take no longer than that.
SHUTDOWN_BOUND_S = 30.0
#: New connections must be refused this soon after the signal (uvicorn checks its exit flag every 0.1 s).
REFUSE_WITHIN_S = 2.0
#: Workers stop accepting one after another (each checks its exit flag every 0.1 s).
SETTLE_S = 0.5
LOAD_REQUESTS = 12
LOAD_HEAD_START_S = 0.2
PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 5.0
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok" (2xx), "rejected" (other status), "refused" (connection failed or closed), "hung" (timeout)
    started: float  # seconds after the signal (negative: before it)
    ended: float
    detail: str


def _attempt(call: Callable[[], int], origin: float) -> Outcome:
    started = time.perf_counter() - origin
    try:
        status = call()
    except (httpx.TimeoutException, TimeoutError) as error:
        return Outcome("hung", started, time.perf_counter() - origin, repr(error))
    except (httpx.TransportError, OSError) as error:
        return Outcome("refused", started, time.perf_counter() - origin, repr(error))
    kind = "ok" if 200 <= status < 300 else "rejected"
    return Outcome(kind, started, time.perf_counter() - origin, str(status))


class SlowRequest:
    """A POST whose headers and first half of the body are sent now and the rest on :meth:`finish`."""

    def __init__(self, host: str, port: int, body: bytes) -> None:
        self.sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S)
        half = len(body) // 2
        head = (
            f"POST /predict/ HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body[:half])
        self.rest = body[half:]

    def finish(self) -> int:
        """Send the rest of the body; the response's status code."""
        with self.sock:
            self.sock.sendall(self.rest)
            response = b""
            while chunk := self.sock.recv(1 << 16):
                response += chunk
        if not response:
            raise ConnectionError("the connection was closed without a response")
        return int(response.split(b" ", 2)[1])


def _load(base_url: str, body: bytes, origin: list[float]) -> tuple[list[threading.Thread], list[Outcome]]:
    """``LOAD_REQUESTS`` threads, each with a connection already open, posting ``body`` once the barrier falls."""
    clients = [
        httpx.Client(base_url=base_url, timeout=60, headers={"connection": "close"}) for _ in range(LOAD_REQUESTS)
    ]
    for client in clients:
        # Keep-alive for this one request: the POST then goes over an established connection.
        assert client.get("/", headers={"connection": "keep-alive"}).status_code == 200
    barrier = threading.Barrier(LOAD_REQUESTS + 1)
    outcomes: list[Outcome] = []

    def post(client: httpx.Client) -> None:
        barrier.wait()
        try:
            outcomes.append(
                _attempt(lambda: client.post("/predict/", content=body, headers=_JSON).status_code, origin[0])
            )
        finally:
            client.close()

    threads = [threading.Thread(target=post, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    return threads, outcomes


def _probe(base_url: str, origin: float, stop: threading.Event, outcomes: list[Outcome]) -> None:
    """New connections (``GET /``, one per connection) until ``stop``."""
    while not stop.is_set():
        outcomes.append(
            _attempt(
                lambda: httpx.get(base_url + "/", timeout=PROBE_TIMEOUT_S, headers={"connection": "close"}).status_code,
                origin,
            )
        )
        stop.wait(PROBE_INTERVAL_S)


def _first(outcomes: list[Outcome], kind: str) -> Outcome | None:
    return min((o for o in outcomes if o.kind == kind), key=lambda o: o.started, default=None)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_sigterm_under_load_finishes_in_flight_refuses_new_and_exits_0(
    service_images, cpus, benchmark_body, name, workers
):
    with run_service(name, service_images[name].tag, cpus, env={"WORKERS": str(workers)}) as service:
        container = service.docker_container
        origin = [time.perf_counter()]  # replaced by the moment of the signal
        slow = SlowRequest(service.host, service.port, benchmark_body)
        threads, load = _load(service.base_url, benchmark_body, origin)
        time.sleep(LOAD_HEAD_START_S)

        origin[0] = signalled = time.perf_counter()
        container.kill(signal="SIGTERM")
        stop, probes = threading.Event(), []
        prober = threading.Thread(target=_probe, args=(service.base_url, signalled, stop, probes), daemon=True)
        prober.start()
        try:
            deadline = signalled + REFUSE_WITHIN_S
            while _first(probes, "refused") is None and time.perf_counter() < deadline:
                time.sleep(0.01)
            refused = _first(probes, "refused")
            time.sleep(0.2)  # a few more probes while the slow request is still in flight
            slow_outcome = _attempt(slow.finish, signalled)
            for thread in threads:
                thread.join(timeout=60)
            exit_code = wait_for_exit(container, SHUTDOWN_BOUND_S + 10)
            exited = time.perf_counter() - signalled
        finally:
            stop.set()
            prober.join(timeout=PROBE_TIMEOUT_S + 5)
        logs = service.logs()

    in_flight = [o for o in load if o.ended > 0]
    print(
        f"\n{name} WORKERS={workers}: SIGTERM → exit {exit_code} after {exited:.2f} s "
        f"({exited - slow_outcome.ended:.2f} s after the last in-flight request); "
        f"first refusal {refused.started if refused else float('nan'):.2f} s; "
        f"{len(in_flight)}/{len(load)} load requests and the slow one finished after the signal; "
        f"probes: {', '.join(f'{k} {sum(p.kind == k for p in probes)}' for k in ('ok', 'rejected', 'refused', 'hung'))}"
    )
    assert len(load) == LOAD_REQUESTS
    assert [o for o in load if o.kind != "ok"] == [], logs
    assert slow_outcome.kind == "ok", f"the in-flight slow request: {slow_outcome}\n{logs}"
    assert refused is not None, f"no new connection was refused within {REFUSE_WITHIN_S} s of SIGTERM: {probes}"
    # The slow request was still in flight when the service already refused new connections.
    assert slow_outcome.ended > refused.started
    assert [p for p in probes if p.kind == "hung"] == []
    # Once refusing, it keeps refusing (a grace for several workers closing their listeners one after another).
    assert [p for p in probes if p.kind == "ok" and p.started > refused.ended + SETTLE_S] == [], probes
    assert exit_code == 0, logs
    assert exited < SHUTDOWN_BOUND_S


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_sigterm_exits_0_when_not_pid_1(service_images, cpus, name):
    """Under an init process (``docker run --init``) the service is not PID 1 and gets no special signal handling."""
    with run_service(name, service_images[name].tag, cpus, init=True) as service:
        container = service.docker_container
        signalled = time.perf_counter()
        container.kill(signal="SIGTERM")
        exit_code = wait_for_exit(container, SHUTDOWN_BOUND_S + 10)
        exited = time.perf_counter() - signalled
        logs = service.logs()
    print(f"\n{name} under --init: SIGTERM → exit {exit_code} after {exited:.2f} s")
    assert exit_code == 0, logs
    assert exited < SHUTDOWN_BOUND_S
