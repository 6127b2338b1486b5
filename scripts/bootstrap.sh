#!/usr/bin/env bash
# Everything `npm test`, `npm run demo` and `npm run bench` need, installed idempotently:
# Debian build packages, npm dependencies, the livekit-server used by tests, the native addon.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser peer of the viewer test (livekit-client, driven by puppeteer-core).
# python3-venv: LiveKit's Python SDK, the subscriber of the simulcast tests.
# redis-server: the Redis shared by the nodes of the cluster tests (scripts/cluster.mjs).
# coturn: the TURN server over TCP and TLS of the TURN tests (__test__/room-turn.spec.ts).
APT_PACKAGES=(libclang-dev clang nasm libvpx-dev libaom-dev cmake pkg-config g++ iproute2 nftables chromium python3-venv redis-server coturn)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm run lint (part of npm test) runs rustfmt and clippy.
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
  echo "bootstrap: rustup component add clippy rustfmt"
  rustup component add clippy rustfmt
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund
fi

LIVEKIT_SERVER_VERSION=v1.13.5
if [ ! -x .tools/bin/livekit-server ] || [ "$(cat .tools/livekit-server.version 2>/dev/null)" != "$LIVEKIT_SERVER_VERSION" ]; then
  echo "bootstrap: go install livekit-server $LIVEKIT_SERVER_VERSION"
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_SERVER_VERSION"
  mv .tools/bin/server .tools/bin/livekit-server
  echo "$LIVEKIT_SERVER_VERSION" > .tools/livekit-server.version
fi

# LiveKit's Python SDK: the subscriber of the simulcast tests (`set_video_quality`).
LIVEKIT_PY_VERSION=1.2.0
if [ "$(cat .tools/pyenv/livekit.version 2>/dev/null)" != "$LIVEKIT_PY_VERSION" ]; then
  echo "bootstrap: pip install livekit==$LIVEKIT_PY_VERSION (into .tools/pyenv)"
  python3 -m venv .tools/pyenv
  .tools/pyenv/bin/pip install -q "livekit==$LIVEKIT_PY_VERSION"
  echo "$LIVEKIT_PY_VERSION" > .tools/pyenv/livekit.version
fi

echo "bootstrap: building the native addon"
node scripts/build-addon.mjs >/dev/null

echo "bootstrap: compiling the TypeScript API (lib/ -> dist/)"
npx tsc -p tsconfig.build.json
