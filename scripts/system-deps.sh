#!/usr/bin/env bash
# Debian packages the suite needs on the host; installs only what is missing (needs root or sudo).
set -euo pipefail
declare -A needed=(
  [mmdebstrap]=mmdebstrap   # builds the local Debian base image when no registry is reachable
  [make]=make
  [cmake]=cmake             # rust-onnx-serving builds libjpeg-turbo and zlib from source, statically
  [nasm]=nasm               # libjpeg-turbo's SIMD code
  [ab]=apache2-utils        # ApacheBench, the load generator of the benchmark
  [strip]=binutils          # strips the extension modules whose wheels ship symbols (model_serving.docker.native)
  [socat]=socat             # forwards a TCP port to the engine's socket: the remote-engine test
)
missing=()
for command in "${!needed[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${needed[$command]}")
done
# docker-compose.yaml and its test: either Compose v2 (`docker compose`) or Debian's docker-compose 1.29.
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
# OpenSSL's headers and pkg-config: oha's TLS (scripts/install-oha.sh builds it with native-tls).
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing Debian packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
