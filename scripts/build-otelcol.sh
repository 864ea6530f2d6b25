#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the tests run (test/collector/otelcol:
# the collector's own Go modules at one release, the components the shipped
# gateway config and the tests use) and links it at
# test/collector/otelcol/otelcol. The binary is cached outside the clone, by
# a hash of its sources and the Go version, in $FLOWTEL_TOOL_CACHE (default
# /var/cache/flowtel/otelcol): a warm machine skips the build; a fresh one
# downloads the modules from the Go module proxy and compiles for about two
# minutes.
set -euo pipefail
cd "$(dirname "$0")/../test/collector/otelcol"

GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ]; then
  echo "build-otelcol: no Go toolchain (go on PATH or /usr/local/go/bin/go): the collector tests need it" >&2
  exit 1
fi

key="$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)-$("$GO" env GOVERSION)"
cache="${FLOWTEL_TOOL_CACHE:-/var/cache/flowtel}/otelcol/$key"
if [ ! -x "$cache/otelcol" ]; then
  echo "build-otelcol: building the test collector ($key)"
  mkdir -p "$cache"
  # -trimpath: the same sources give the same binary wherever the clone is.
  "$GO" build -trimpath -o "$cache/otelcol.tmp" .
  mv "$cache/otelcol.tmp" "$cache/otelcol"
fi
ln -sfn "$cache/otelcol" otelcol
