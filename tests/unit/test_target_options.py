"""--target: the option's parsing, the health check of each URL (against a local HTTP server), and a run against
targets builds nothing and refuses the measurements that need the suite's own containers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from model_serving.perf.config import RunConfig, profile_with
from model_serving.perf.session import PerfRun
from model_serving.perf.target import (
    UNAVAILABLE,
    TargetError,
    TargetService,
    Unavailable,
    check_target,
    check_targets,
    common_model_id,
    parse_targets,
)
from model_serving.ports import free_ports
from model_serving.report.schema import report_schema
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.unit


def test_targets_are_parsed_in_the_services_order_without_trailing_slashes():
    parsed = parse_targets(
        ["rust-onnx-serving=http://127.0.0.1:8082/, onnx-serving=http://10.0.0.5:8080", "torch-serving=https://t/x/"],
        SERVICE_NAMES,
    )
    assert parsed == {
        "torch-serving": "https://t/x",
        "onnx-serving": "http://10.0.0.5:8080",
        "rust-onnx-serving": "http://127.0.0.1:8082",
    }
    assert list(parsed) == [name for name in SERVICE_NAMES if name in parsed]
    assert parse_targets(["onnx-serving=http://h:1"], SERVICE_NAMES) == {"onnx-serving": "http://h:1"}


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["tensorflow-serving=http://h:1"], "unknown service 'tensorflow-serving'; choose from torch-serving, onnx"),
        (["onnx-serving"], "'onnx-serving' is not name=url"),
        (["onnx-serving="], "is not name=url"),
        (["=http://h:1"], "is not name=url"),
        (["onnx-serving=http://a:1", "onnx-serving=http://b:2"], "onnx-serving is given twice"),
        (["onnx-serving=127.0.0.1:8080"], "is not an http:// or https:// URL"),
        (["onnx-serving=ftp://h:21"], "is not an http:// or https:// URL"),
        (["onnx-serving=http://:8080"], "is not an http:// or https:// URL"),
        (["onnx-serving=http://h:port"], "is not an http:// or https:// URL"),
        (["onnx-serving=http://h:1/?x=1"], "is not an http:// or https:// URL"),
        ([" , "], "no service given"),
        ([], "no service given"),
    ],
)
def test_bad_targets_are_refused_with_what_is_wrong(texts, message):
    with pytest.raises(ValueError, match="--target") as raised:
        parse_targets(texts, SERVICE_NAMES)
    assert message in str(raised.value)


class _Answers(BaseHTTPRequestHandler):
    """GET / answers what the server's ``answer`` says: (status, body)."""

    def do_GET(self) -> None:
        status, body = self.server.answer  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    # Polled every 50 ms: shutdown() waits up to one poll (0.5 s by default).
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _health(service: str = "onnx-serving", model_id: str = "m1", status: str = "healthy") -> str:
    return json.dumps({"status": status, "service": service, "model_id": model_id, "workers": 1, "threads": 1})


def test_a_healthy_target_is_kept_with_its_health(server):
    server.answer = (200, _health())
    target = check_target("onnx-serving", _url(server))
    assert target == TargetService("onnx-serving", _url(server), json.loads(_health()))
    assert check_targets({"onnx-serving": _url(server)}) == {"onnx-serving": target}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((503, '{"detail": "loading"}'), "GET / answered 503"),
        ((200, "<html>ok</html>"), "answered 200 but not JSON"),
        ((200, _health(status="starting")), 'not {"status": "healthy"}'),
        ((200, "[1, 2]"), 'not {"status": "healthy"}'),
        ((200, _health(service="torch-serving")), "that URL serves torch-serving, not onnx-serving"),
    ],
)
def test_a_target_that_does_not_answer_healthy_as_named_is_refused(server, answer, message):
    server.answer = answer
    with pytest.raises(TargetError, match=r"--target onnx-serving=http://127\.0\.0\.1:\d+") as raised:
        check_target("onnx-serving", _url(server))
    assert message in str(raised.value)


def test_a_target_nobody_listens_on_is_refused():
    port = free_ports(1)[0]
    with pytest.raises(TargetError, match=rf"--target onnx-serving=http://127.0.0.1:{port}: GET .* failed: Connect"):
        check_target("onnx-serving", f"http://127.0.0.1:{port}", timeout_s=2)


def test_the_model_is_the_one_every_target_names():
    def target(name: str, model_id: str | None) -> TargetService:
        return TargetService(name, "http://h", {"model_id": model_id} if model_id else {})

    assert common_model_id({"a": target("a", "m1"), "b": target("b", "m1")}) == "m1"
    assert common_model_id({"a": target("a", "m1"), "b": target("b", "m2")}) is None
    assert common_model_id({"a": target("a", None)}) is None


def test_the_unavailable_figures_are_fields_the_schema_names():
    names = report_schema()["$defs"]["service"]["properties"]["unavailable"]["propertyNames"]["enum"]
    assert set(UNAVAILABLE) == set(names)
    assert all(reason.startswith("--target: ") for reason in UNAVAILABLE.values())


def _target_run(tmp_path: Path) -> PerfRun:
    targets = {"onnx-serving": TargetService("onnx-serving", "http://127.0.0.1:9", {"model_id": "m1"})}
    config = RunConfig(profile_with("smoke"), ("onnx-serving",), tmp_path / "p.jpg", {}, targets={"onnx-serving": "x"})
    return PerfRun(config, None, tmp_path, tmp_path / "p.jpg", tmp_path / "p.json", targets=targets)


def test_a_target_run_builds_nothing_and_refuses_what_needs_containers(tmp_path, monkeypatch):
    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a --target run built an image")

    monkeypatch.setattr("model_serving.perf.session.build_service_image", no_build)
    run = _target_run(tmp_path)
    results = run.results_for("onnx-serving")
    assert results.image is None
    assert results.unavailable == UNAVAILABLE
    assert run.unavailable("startup_s") == UNAVAILABLE["startup_s"]
    assert run.unavailable("sweep") is None
    for measure in (run.startups, run.memory_over_requests, run.against_usual):
        with pytest.raises(Unavailable, match="--target: the service was not started by the suite"):
            measure("onnx-serving")
    assert run.config.describe()["targets"] == {"onnx-serving": "x"}
    assert run._model() == {"model_id": "m1"}
