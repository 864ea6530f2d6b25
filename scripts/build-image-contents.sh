#!/usr/bin/env bash
# Builds everything the Flowtel container image holds into OUT_DIR, the way
# the Dockerfile's build stage does (it calls this script) and CI does outside
# Docker (test/helm/image.test.ts):
#
#   OUT_DIR/package.json, package-lock.json
#   OUT_DIR/dist/src/...                        the compiled TypeScript (src only, no tests)
#   OUT_DIR/native/build/Release/flowtel_bpf.node   the libbpf N-API addon
#   OUT_DIR/bpf/.output/*.bpf.o                 the CO-RE BPF objects
#   OUT_DIR/node_modules                        production dependencies only (npm ci --omit=dev)
#
# The sources are copied to a scratch directory and built there, so the work
# tree's own node_modules, dist/ and build outputs are neither used nor touched.
#
# Needs: node 20 + npm, clang, llvm, make, g++, python3 (node-gyp), libbpf-dev,
# libelf-dev, zlib1g-dev, pkg-config, bpftool, xz-utils, zstd (scripts/setup.sh
# installs them), and Debian's package servers.
# The BPF objects are compiled against the vmlinux.h of Debian's 6.1 kernel,
# made from the BTF in its package (scripts/debian-kernel.sh vmlinux 6.1), not
# against the build machine's kernel: the image builds the same on any build
# host, and the CO-RE objects load on every kernel docs/kernels.md lists.
# VMLINUX_BTF=FILE uses another BTF (a vmlinux ELF or a raw BTF file) instead.
#
# Usage: scripts/build-image-contents.sh OUT_DIR     (OUT_DIR: new or empty)
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
if [ -n "$(ls -A "$OUT")" ]; then
  echo "build-image-contents: $OUT is not empty" >&2
  exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/flowtel-image-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
step() { echo "build-image-contents: $*"; }

step "copying sources to $WORK"
cp "$SRC/package.json" "$SRC/package-lock.json" "$SRC/tsconfig.json" "$SRC/tsconfig.build.json" "$WORK/"
cp -R "$SRC/src" "$WORK/src"
mkdir -p "$WORK/bpf" "$WORK/native"
cp "$SRC/bpf/Makefile" "$SRC"/bpf/*.bpf.c "$SRC"/bpf/*.h "$WORK/bpf/"
cp -R "$SRC/native/binding.gyp" "$SRC/native/src" "$WORK/native/"

cd "$WORK"
# Build tools (node-gyp, TypeScript) are devDependencies. Peer dependencies are
# skipped: the only ones are those of the helm binary package the chart tests use.
step "npm ci (build dependencies)"
npm ci --no-audit --no-fund --omit=peer --loglevel=error

step "building the native addon"
npm run --silent build:native >/dev/null

if [ -z "${VMLINUX_BTF:-}" ]; then
  step "fetching the BTF of Debian's 6.1 kernel"
  VMLINUX_BTF="$("$SRC/scripts/debian-kernel.sh" vmlinux 6.1)"
fi
step "building the BPF objects (BTF: $VMLINUX_BTF)"
make -s -C bpf VMLINUX_BTF="$VMLINUX_BTF"

step "compiling TypeScript (src)"
npx tsc -p tsconfig.build.json

step "assembling $OUT"
mkdir -p "$OUT/dist" "$OUT/native/build/Release" "$OUT/bpf/.output"
cp -R dist/src "$OUT/dist/src"
find "$OUT/dist" -name '*.map' -delete
cp native/build/Release/*.node "$OUT/native/build/Release/"
cp bpf/.output/*.bpf.o "$OUT/bpf/.output/"
cp package.json package-lock.json "$OUT/"
chmod +x "$OUT/dist/src/cli/main.js"

step "npm ci --omit=dev (runtime dependencies)"
(cd "$OUT" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)

# The staged tree must run on its own: every module the CLI imports resolves
# from the production node_modules, and the addon links against libbpf.
step "checking the staged tree"
node "$OUT/dist/src/cli/main.js" version >/dev/null
node -e "require(process.argv[1])" "$OUT/native/build/Release/flowtel_bpf.node"
step "done: $(du -sh "$OUT" | cut -f1) in $OUT"
