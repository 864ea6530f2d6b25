#!/usr/bin/env bash
# Installs what Flowtel needs on a fresh Debian machine and builds it:
# system packages (toolchain, libbpf, test tools), npm dependencies, the
# native addon, the BPF objects and the TypeScript. Idempotent: steps whose
# output is up to date are skipped, so `npm start` / `npm test` stay quick.
#
#   scripts/setup.sh           what the agent needs (npm start)
#   scripts/setup.sh --test    and what the tests need: qemu and the tools that
#                              fetch Debian kernels and build their initramfs
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool make g++ python3
          iproute2 nftables iperf3 util-linux procps unzip xz-utils zstd debian-archive-keyring)
# The kernel matrix (test/kernels/): qemu boots Debian kernels whose packages apt fetches.
TEST_PACKAGES=(qemu-system-x86 seabios kmod busybox-static cpio)
if [ "${1:-}" = "--test" ]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

if [ ! -f native/build/Release/flowtel_bpf.node ] || [ -n "$(find native/src native/binding.gyp -newer native/build/Release/flowtel_bpf.node 2>/dev/null)" ]; then
  echo "setup: building the native addon"
  npm run --silent build:native >/dev/null
fi

echo "setup: building BPF objects"
make -s -C bpf

echo "setup: compiling TypeScript"
npx tsc -p tsconfig.json
chmod +x dist/src/cli/main.js

# The tests' OpenTelemetry Collector, built with Go from the collector's modules (cached outside the clone).
if [ "${1:-}" = "--test" ]; then bash scripts/build-otelcol.sh; fi
