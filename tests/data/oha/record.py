"""Re-make the recorded oha outputs of this folder: ``.venv/bin/python tests/data/oha/record.py``.

Runs the installed oha (``make setup``) with the runner's own command line against the stalling server, at a
fixed rate with one connection, once with ``--latency-correction`` and once without, and writes oha's JSON as
it printed it. One connection makes the omission plain: the request in flight when the server freezes is the
only one the uncorrected figures see waiting; the ones scheduled during the freeze are sent late and look fast.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "integration"))  # the stalling server lives beside its integration test

from stalling_server import stalling_server  # noqa: E402

from model_serving.load.oha_runner import OpenLoopSpec, find_oha, oha_command, oha_version  # noqa: E402

# tests/unit/test_oha_parser.py relies on these.
RATE_PER_S = 150.0
REQUESTS = 450  # 3 s at that rate: three freezes
CONCURRENCY = 1
RECORDINGS = {"corrected.json": True, "uncorrected.json": False}


def record() -> None:
    binary = find_oha()
    print(f"recording with {oha_version(binary)} ({binary})")
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body.json"
        body.write_text('{"image": "not really"}')
        for name, corrected in RECORDINGS.items():
            with stalling_server() as url:
                spec = OpenLoopSpec(
                    url, body, RATE_PER_S, CONCURRENCY, requests=REQUESTS, latency_correction=corrected, timeout_s=10.0
                )
                command = oha_command(binary, spec)
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            (HERE / name).write_text(output)
            print(f"wrote {HERE / name} ({len(output)} bytes)")


if __name__ == "__main__":
    record()
