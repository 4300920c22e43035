"""The ``model-serving`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_serving.paths import DEFAULT_MODEL_DIR, GENERATED_IMAGES_DIR, USER_MODEL_DIR
from model_serving.sources.options import add_model_uri_options

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%H:%M:%S"


def _export(args: argparse.Namespace) -> int:
    from model_serving.artifacts import ModelSource, export

    source = ModelSource.from_uris(args.state_dict, args.onnx_model, args.seed)
    out = args.out or (USER_MODEL_DIR if args.state_dict or args.onnx_model else DEFAULT_MODEL_DIR)
    manifest = export(out, source)
    print(manifest["model_id"])
    return 0


def _build(args: argparse.Namespace) -> int:
    from model_serving.docker.build import build_service_images
    from model_serving.perf.config import parse_services

    try:
        chosen = parse_services(args.services)
    except ValueError as error:
        log.error(str(error))
        return 2
    for image in build_service_images(chosen, args.model).values():
        print(f"{image.tag}  (also {image.tag.rsplit(':', 1)[0]}:latest, {image.size_mb:.1f} MB)")
    return 0


def _images(args: argparse.Namespace) -> int:
    from model_serving.corpus import benchmark_payload_paths, corpus_paths

    paths = corpus_paths(args.dir)
    jpeg, body = benchmark_payload_paths(args.dir)
    log.info(f"{len(paths)} corpus images in {args.dir / 'corpus'}")
    log.info(
        f"benchmark image {jpeg} ({jpeg.stat().st_size / 1000:.0f} KB), "
        f"request body {body} ({body.stat().st_size / 1000:.0f} KB)"
    )
    return 0


def bench_argv(
    targets: list[str], profile: str, reports_dir: Path | None, extra: list[str], root: Path, python: str
) -> list[str]:
    """The ``pytest -m perf`` command line ``model-serving bench`` runs from the project checkout ``root``."""
    argv = [python, "-m", "pytest", "-m", "perf", str(root / "tests" / "perf"), "--profile", profile]
    argv += [f"--target={target}" for target in targets]
    if reports_dir is not None:
        argv += ["--reports-dir", str(reports_dir)]
    return argv + (extra[1:] if extra[:1] == ["--"] else extra)


def _bench(args: argparse.Namespace) -> int:
    import subprocess

    from model_serving import paths

    if not (paths.ROOT / "tests" / "perf").is_dir():
        log.error(f"no tests/perf under {paths.ROOT}: run this in the project's checkout (or set MODEL_SERVING_ROOT)")
        return 2
    argv = bench_argv(args.target, args.profile, args.reports_dir, args.pytest_args, paths.ROOT, sys.executable)
    log.info(" ".join(argv[1:]))
    return subprocess.call(argv, cwd=paths.ROOT)


def _check(args: argparse.Namespace) -> int:
    from model_serving.checks import run_check

    return run_check(args.model, args.dir, args.seconds)


def _load(args: argparse.Namespace) -> int:
    import json

    from model_serving.corpus import benchmark_payload_paths
    from model_serving.load.locust_runner import LocustSpec, run_locust
    from model_serving.report.document import load_figures

    payload = args.payload or benchmark_payload_paths()[1]
    spec = LocustSpec(
        args.url,
        payload,
        args.users,
        args.run_time,
        workers=args.workers,
        remote_workers=args.remote_workers,
        bind_host=args.master_bind_host,
        master_port=args.master_port,
    )
    outcome = run_locust(spec)
    figures = load_figures(outcome.report) if outcome.report else {}
    print(json.dumps({**figures, "failure": outcome.failure}, indent=2))
    return 0 if outcome.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-serving", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser("export", help="state dict → ONNX with preprocessing → optimized ONNX + manifest")
    export.add_argument(
        "--out",
        type=Path,
        help=f"artifact folder (default: {DEFAULT_MODEL_DIR}, or {USER_MODEL_DIR} for a state dict or ONNX model)",
    )
    add_model_uri_options(export.add_argument)
    export.add_argument("--seed", type=int, default=1234, help="seed of the default model (default: %(default)s)")
    export.set_defaults(run=_export)

    build = commands.add_parser("build", help="build the service images for an artifact folder (tags :latest too)")
    build.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="artifact folder (default: %(default)s)")
    build.add_argument("--services", help="comma-separated services (default: all three)")
    build.set_defaults(run=_build)

    images = commands.add_parser("images", help="generate the benchmark payload and the correctness corpus")
    images.add_argument("--dir", type=Path, default=GENERATED_IMAGES_DIR, help="output folder (default: %(default)s)")
    images.set_defaults(run=_images)

    check = commands.add_parser("check", help="in-process agreement torch vs ONNX on the corpus, and timings")
    check.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="artifact folder (default: %(default)s)")
    check.add_argument("--dir", type=Path, default=GENERATED_IMAGES_DIR, help="image folder (default: %(default)s)")
    check.add_argument("--seconds", type=float, default=5.0, help="timing duration per path (default: %(default)s)")
    check.set_defaults(run=_check)

    load = commands.add_parser(
        "load", help="load a running service with distributed Locust; prints the figures as report.json's load"
    )
    load.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8082")
    load.add_argument("--engine", choices=["locust"], default="locust", help="load generator (default: %(default)s)")
    load.add_argument("--users", type=int, default=50, help="closed-loop users = concurrency (default: %(default)s)")
    load.add_argument("--run-time", type=int, default=60, help="seconds of load (default: %(default)s)")
    load.add_argument("--workers", type=int, default=2, help="local worker processes (default: %(default)s)")
    load.add_argument(
        "--remote-workers", type=int, default=0, help="workers started on other machines (default: %(default)s)"
    )
    load.add_argument(
        "--master-bind-host", default="127.0.0.1", help="0.0.0.0 to let remote workers in (default: %(default)s)"
    )
    load.add_argument("--master-port", type=int, help="the master's port (default: a free one)")
    load.add_argument("--payload", type=Path, help="request body (default: the generated benchmark payload)")
    load.set_defaults(run=_load)

    bench = commands.add_parser(
        "bench",
        help="the benchmark (pytest -m perf); with --target against services already running",
        description="Runs `pytest -m perf` in the project checkout. With --target it measures services already "
        "running at the given URLs (load, rounds, sweep, open loop, capacity, stages from /metrics) and builds and "
        "starts nothing; the report names the figures it could not take. Arguments after -- go to pytest.",
    )
    bench.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL,...",
        help="e.g. onnx-serving=http://127.0.0.1:8080,rust-onnx-serving=http://127.0.0.1:8082 (repeatable)",
    )
    bench.add_argument(
        "--profile", default="default", help="check, smoke, default, sizes or upstream (default: %(default)s)"
    )
    bench.add_argument("--reports-dir", type=Path, help="where reports go (default: reports/ under the project)")
    bench.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then more pytest options, e.g. -- --rounds 3")
    bench.set_defaults(run=_bench)
    return parser


def configure_logging() -> None:
    """The suite's progress lines (INFO) on stderr; other libraries' only from WARNING (httpx alone logs every
    request at INFO)."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, stream=sys.stderr)
    logging.getLogger("model_serving").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    from model_core.errors import ModelError

    try:
        return int(args.run(args))
    except ModelError as error:
        print(f"model-serving: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # Image builds fail with their log's end in the message; no traceback needed for that.
        if error.__class__.__name__ != "ImageBuildError":
            raise
        print(f"model-serving: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
