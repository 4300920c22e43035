#!/usr/bin/env bash
# oha, the open-loop load generator (fixed arrival rates, latency corrected for coordinated omission).
# Built once with cargo into the suite's cache, where model_serving.load.oha_runner looks for it.
set -euo pipefail
# 1.16.0 needs rustc >= 1.88 (its rust-version); bumping the pin rebuilds because the version check fails.
OHA_VERSION=1.16.0
CACHE_DIR="${MODEL_SERVING_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-serving}"
TOOLS_DIR="$CACHE_DIR/tools"
OHA="$TOOLS_DIR/bin/oha"

# Already built: the binary exists, runs, and is the pinned version.
if [ -x "$OHA" ] && "$OHA" --version 2>/dev/null | grep -qx "oha $OHA_VERSION"; then
  exit 0
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-oha.sh: cargo is not installed (https://rustup.rs); it builds oha $OHA_VERSION" >&2
  exit 1
fi
echo "== building oha $OHA_VERSION (once, cached in $TOOLS_DIR)"
# A target folder of its own, removed afterwards: the Makefile's CARGO_TARGET_DIR holds the services' builds.
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
# TLS through the system's OpenSSL (native-tls) instead of the default rustls, whose aws-lc-sys, a C library built
# from source, was most of the build's time. The suite speaks plain HTTP; oha needs one TLS feature to compile.
CARGO_TARGET_DIR="$build_dir" cargo install oha --version "=$OHA_VERSION" --locked \
  --no-default-features --features native-tls --root "$TOOLS_DIR" --quiet --force
"$OHA" --version
