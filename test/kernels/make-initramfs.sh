#!/usr/bin/env bash
# Builds the initramfs of a kernel-matrix VM for an unpacked Debian kernel
# (scripts/debian-kernel.sh fetch): static busybox, initramfs-init.sh as /init,
# and the modules the root file system needs (virtio PCI, 9p, overlay) with
# their dependencies, decompressed (busybox insmod reads plain .ko only; Debian
# ships .ko.xz from 6.12). Also runs depmod on the unpacked tree, so the guest's
# modprobe finds every other module. Prints the initramfs path; kept next to
# the kernel and rebuilt when this script or the init changes.
#
#   test/kernels/make-initramfs.sh KERNEL_DIR
#
# Needs: busybox-static, kmod, cpio, xz-utils, zstd, gzip.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
KDIR="$1"
RELEASE="$(cat "$KDIR/RELEASE")"
OUT="$KDIR/initramfs.gz"
ROOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

if [ -s "$OUT" ] && [ "$OUT" -nt "$HERE/initramfs-init.sh" ] && [ "$OUT" -nt "$0" ]; then
  echo "$OUT"
  exit 0
fi

[ -s "$KDIR/lib/modules/$RELEASE/modules.dep" ] && [ "$KDIR/lib/modules/$RELEASE/modules.dep" -nt "$KDIR/RELEASE" ] ||
  depmod -b "$KDIR" "$RELEASE"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/flowtel-initramfs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{bin,modules,proc,sys,dev}
cp /bin/busybox "$WORK/bin/busybox"
cp "$HERE/initramfs-init.sh" "$WORK/init"
chmod +x "$WORK/init"
: > "$WORK/modules.order"
# Dependencies first, each once; a module built into this kernel prints "builtin" and is skipped.
for module in "${ROOT_MODULES[@]}"; do
  modprobe -S "$RELEASE" -d "$KDIR" --show-depends "$module"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r path; do
  name="$(basename "$path")"
  case "$path" in
    *.ko.xz) xz -dc "$path" > "$WORK/modules/${name%.xz}"; name="${name%.xz}" ;;
    *.ko.zst) zstd -dcq "$path" > "$WORK/modules/${name%.zst}"; name="${name%.zst}" ;;
    *) cp "$path" "$WORK/modules/$name" ;;
  esac
  echo "$name" >> "$WORK/modules.order"
done
(cd "$WORK" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT"
