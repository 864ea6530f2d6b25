#!/usr/bin/env bash
# Fetches a Debian kernel package of a named series and keeps it in a cache
# outside the clone, for the kernel-matrix VMs (test/kernels/) and for building
# the BPF objects against an older kernel's BTF (scripts/build-image-contents.sh).
#
#   scripts/debian-kernel.sh fetch SERIES     prints the directory the package is unpacked in
#                                             (boot/vmlinuz-RELEASE, lib/modules/RELEASE/, RELEASE)
#   scripts/debian-kernel.sh vmlinux SERIES   prints the path of its uncompressed vmlinux
#                                             (an ELF whose .BTF section bpftool reads)
#   scripts/debian-kernel.sh series           lists the series
#
# SERIES is 5.10 (bullseye), 6.1 (bookworm) or 6.12 (bookworm-security), the VM
# kernels of test/kernels/matrix.ts. The
# newest package of the series that Debian serves is taken; with no network the
# newest one already cached is used. apt runs with its own lists and cache
# under the cache directory, so the machine's apt sources are neither needed
# nor changed (5.10 comes from bullseye, which a bookworm machine has no source
# for).
#
# Cache: $FLOWTEL_KERNEL_CACHE, default /var/cache/flowtel/kernels.
# Needs: apt-get, dpkg-deb, xz-utils, zstd (scripts/setup.sh installs them).
set -euo pipefail

CACHE="${FLOWTEL_KERNEL_CACHE:-/var/cache/flowtel/kernels}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

usage() {
  echo "usage: $0 fetch|vmlinux SERIES   (SERIES: 5.10, 6.1, 6.12)" >&2
  echo "       $0 series" >&2
  exit 2
}

# The Debian suites and the package-name pattern of each series.
series_suites() {
  case "$1" in
    5.10) echo "bullseye bullseye-security" ;;
    6.1 | 6.12) echo "bookworm bookworm-security" ;;
    *) return 1 ;;
  esac
}
series_pattern() {
  case "$1" in
    5.10) echo '^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' ;;
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
    *) return 1 ;;
  esac
}

log() { echo "debian-kernel: $*" >&2; }

# apt-get/apt-cache with a private configuration: its own sources, lists and archive cache.
apt_private() {
  local tool="$1" dist="$2"
  shift 2
  local dir="$CACHE/apt/$dist"
  "$tool" -q \
    -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o Dir::State::status=/dev/null \
    -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

# Refreshes the private apt lists of a series (at most once an hour); fails when Debian cannot be reached.
apt_update() {
  local series="$1" dist dir suite stamp
  dist="$(series_suites "$series" | cut -d' ' -f1)"
  dir="$CACHE/apt/$dist"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  : > "$dir/sources.list.new"
  for suite in $(series_suites "$series"); do
    case "$suite" in
      *-security) echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian-security $suite main" ;;
      *) echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $suite main" ;;
    esac >> "$dir/sources.list.new"
  done
  mv "$dir/sources.list.new" "$dir/sources.list"
  stamp="$dir/updated"
  if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
    apt_private apt-get "$dist" update >/dev/null 2>&1 || return 1
    touch "$stamp"
  fi
  echo "$dist"
}

# The newest package of the series Debian serves, or nothing.
newest_package() {
  local series="$1" dist="$2"
  apt_private apt-cache "$dist" search --names-only "$(series_pattern "$series")" 2>/dev/null |
    cut -d' ' -f1 | sort -V | tail -n 1
}

# The newest package of the series already unpacked in the cache, or nothing.
newest_cached() {
  local series="$1" pattern
  pattern="$(series_pattern "$series")"
  for dir in "$CACHE"/unpacked/*/; do
    [ -f "$dir/RELEASE" ] || continue
    basename "$dir"
  done 2>/dev/null | grep -E "$pattern" | sort -V | tail -n 1
}

# Unpacks a package into the cache (once) and prints its directory.
unpack() {
  local package="$1" dist="$2" dir work deb
  dir="$CACHE/unpacked/$package"
  if [ -f "$dir/RELEASE" ]; then
    touch "$dir/USED"
    echo "$dir"
    return
  fi
  work="$(mktemp -d "$CACHE/download.XXXXXX")"
  log "downloading $package"
  (cd "$work" && apt_private apt-get "$dist" download "$package" >/dev/null 2>&1) || {
    rm -rf "$work"
    log "cannot download $package"
    return 1
  }
  deb="$(ls "$work"/*.deb)"
  mkdir -p "$work/tree"
  dpkg-deb -x "$deb" "$work/tree"
  ls "$work/tree/lib/modules" > "$work/tree/RELEASE"
  dpkg-deb -f "$deb" Version > "$work/tree/VERSION"
  rm -f "$deb"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$work/tree" "$dir"
  rm -rf "$work"
  touch "$dir/USED"
  echo "$dir"
}

# Removes the series' packages other than `keep` that nothing fetched for a day: Debian replaces its kernels
# every few weeks, and a run that fetched one earlier may still be booting it.
prune_older() {
  local series="$1" keep="$2" pattern dir
  pattern="$(series_pattern "$series")"
  for dir in "$CACHE"/unpacked/*/; do
    dir="${dir%/}"
    if basename "$dir" | grep -qE "$pattern" && [ "$(basename "$dir")" != "$keep" ] && [ -z "$(find "$dir/USED" -mmin -1440 2>/dev/null)" ]; then
      log "removing $(basename "$dir"), older than $keep and unused for a day"
      rm -rf "$dir"
    fi
  done
}

fetch() {
  local series="$1" dist package cached
  series_pattern "$series" >/dev/null || usage
  mkdir -p "$CACHE/unpacked"
  cached="$(newest_cached "$series")"
  if dist="$(apt_update "$series")" && package="$(newest_package "$series" "$dist")" && [ -n "$package" ]; then
    if unpack "$package" "$dist"; then
      prune_older "$series" "$package"
      return
    fi
  fi
  if [ -n "$cached" ]; then
    log "Debian not reachable or package not found: using the cached $cached"
    touch "$CACHE/unpacked/$cached/USED"
    echo "$CACHE/unpacked/$cached"
    return
  fi
  log "no $series kernel package: Debian not reachable and nothing cached in $CACHE"
  return 1
}

# The kernel image decompressed: bzImage holds it xz- (5.10, 6.1) or zstd-compressed (6.12) after a setup stub.
vmlinux() {
  local dir out release image offset
  dir="$(fetch "$1")"
  release="$(cat "$dir/RELEASE")"
  out="$dir/vmlinux"
  if [ ! -s "$out" ]; then
    image="$dir/boot/vmlinuz-$release"
    if offset="$(magic_offset "$image" '\xfd\x37\x7a\x58\x5a\x00')"; then
      tail -c "+$((offset + 1))" "$image" | xz -dcq > "$out.tmp" 2>/dev/null || true
    elif offset="$(magic_offset "$image" '\x28\xb5\x2f\xfd')"; then
      tail -c "+$((offset + 1))" "$image" | zstd -dcq > "$out.tmp" 2>/dev/null || true
    else
      log "$image: no xz or zstd payload found"
      return 1
    fi
    # The decompressors complain about the bytes after the payload; what counts is an ELF came out.
    if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" != "7f454c46" ]; then
      rm -f "$out.tmp"
      log "$image: the payload did not decompress to an ELF"
      return 1
    fi
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# Byte offset of the first occurrence of a byte string (grep -P escapes, e.g. '\xfd\x37') in a file, or failure.
magic_offset() {
  local found
  found="$(LC_ALL=C grep -obUaP "$2" "$1" | head -n 1 | cut -d: -f1)"
  [ -n "$found" ] || return 1
  echo "$found"
}

case "${1:-}" in
  fetch) [ $# -eq 2 ] || usage; fetch "$2" ;;
  vmlinux) [ $# -eq 2 ] || usage; vmlinux "$2" ;;
  series) echo "5.10 6.1 6.12" ;;
  *) usage ;;
esac
