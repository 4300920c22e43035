"""Re-make the recorded Locust statistics of this folder: ``.venv/bin/python tests/data/locust/record.py``
(add ``--service http://127.0.0.1:PORT`` to record ``service/`` against a running service too).

Runs the harness's own runner (one master and two workers on loopback, the shipped locustfile) and keeps the
master's CSV files, one folder per case:

- ``ok/``: a local server answering 200 to everything;
- ``non_2xx/``: the same server answering 503 to every fifth request;
- ``refused/``: a port nobody listens on (no answer at all);
- ``service/``: the benchmark body against a running service (``model-serving images`` writes the body,
  ``docker-compose up -d rust-onnx-serving`` or a test fixture runs the service).

The logs are dropped; the history file is kept (it is small for runs this short).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "integration"))  # the status server lives beside its integration test

from status_server import status_server  # noqa: E402

from model_serving.cli import configure_logging  # noqa: E402
from model_serving.corpus import benchmark_payload_paths  # noqa: E402
from model_serving.load.locust_runner import LocustSpec, free_port, locust_version, run_locust  # noqa: E402

# tests/unit/test_locust_parser.py relies on these.
USERS = 2
RUN_TIME_S = 2
SERVICE_USERS = 4
SERVICE_RUN_TIME_S = 3
WORKERS = 2


def _record(name: str, spec: LocustSpec) -> None:
    folder = HERE / name
    outcome = run_locust(spec, label=name, csv_dir=folder)
    for log in folder.glob("*.log"):
        log.unlink()
    print(f"{name}: ok={outcome.ok} failure={outcome.failure}")


def record(service_url: str | None) -> None:
    print(f"recording with Locust {locust_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body.json"
        body.write_text('{"image": "not really"}')
        with status_server() as url:
            _record("ok", LocustSpec(url, body, USERS, RUN_TIME_S, WORKERS))
        with status_server(every=5, status=503) as url:
            _record("non_2xx", LocustSpec(url, body, USERS, RUN_TIME_S, WORKERS))
        _record("refused", LocustSpec(f"http://127.0.0.1:{free_port()}", body, USERS, RUN_TIME_S, WORKERS))
    if service_url:
        payload = benchmark_payload_paths()[1]
        _record("service", LocustSpec(service_url, payload, SERVICE_USERS, SERVICE_RUN_TIME_S, WORKERS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", help="base URL of a running service, to record service/")
    configure_logging()  # the runs' progress lines
    record(parser.parse_args().service)
