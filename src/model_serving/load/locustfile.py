"""Locust's side of the benchmark (DESIGN §6): each user POSTs the benchmark body to ``/predict/`` in a closed loop.

Run by ``model_serving.load.locust_runner`` (master and workers), or by hand: ``locust -f <this file> --worker
--master-host <master>`` on another machine. The file needs only Locust and the standard library, so a worker
machine needs no copy of the harness, just this file (or ``-f -`` to take it from the master) and the body.

- The body is read from the file named by ``MODEL_SERVING_PAYLOAD``, in each process that runs users: every
  worker machine names its own copy (the master's path would mean nothing there).
- No think time (``constant(0)``): a user sends its next request as soon as the last is answered, as ab's
  concurrency does, so users = concurrency.
- Any answer outside 2xx fails, redirects included (they are not followed, as ab does not follow them), and so
  does a request that got no (whole) answer. The messages start with ``NON_2XX`` or ``NO_ANSWER``, which is how
  ``locust_parser`` tells the two apart in Locust's failure table; keep them in step with it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from locust import FastHttpUser, constant, task

PAYLOAD_ENV = "MODEL_SERVING_PAYLOAD"
PATH = "/predict/"
NON_2XX = "non-2xx answer"
NO_ANSWER = "no answer"
# Per request, as the ab runs' -s 60.
TIMEOUT_S = 60.0


@cache
def _body() -> bytes:
    name = os.environ.get(PAYLOAD_ENV)
    if not name:
        raise RuntimeError(f"{PAYLOAD_ENV} must name the request body's file (the benchmark payload JSON)")
    return Path(name).read_bytes()


class PredictUser(FastHttpUser):
    """One client of the benchmark: the same request as ``ab -p payload.json -T application/json``."""

    wait_time = constant(0)
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S

    def on_start(self) -> None:
        self.body = _body()

    @task
    def predict(self) -> None:
        with self.client.post(
            PATH,
            data=self.body,
            headers={"Content-Type": "application/json"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            status = response.status_code or 0
            # what Locust caught on the way: no connection, a reset, a timeout, a body cut short
            problem = response.request_meta.get("exception")
            if 200 <= status < 300 and problem is None:
                response.success()
            elif status == 0 or 200 <= status < 300:
                response.failure(f"{NO_ANSWER}: {problem!r}")
            else:
                response.failure(f"{NON_2XX}: HTTP {status}")
