#!/bin/busybox sh
# /init of the kernel-matrix VM's initramfs (busybox): loads the modules the
# root needs, mounts the host's root (9p, read-only) under a tmpfs overlay,
# mounts the guest kernel's modules and the results share, and hands over to
# guest-init.sh from the host's root. Arguments come on the kernel command line:
#   flowtel.release=RELEASE   the guest kernel's release (its modules directory)
#   flowtel.init=PATH         the script to run once the root is up
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
  echo "initramfs: $*" > /dev/ttyS1
  echo o > /proc/sysrq-trigger
  sleep 60
}

for arg in $(cat /proc/cmdline); do
  case "$arg" in
    flowtel.release=*) release="${arg#*=}" ;;
    flowtel.init=*) guest_init="${arg#*=}" ;;
  esac
done
[ -n "$release" ] && [ -n "$guest_init" ] || fail "flowtel.release and flowtel.init must be on the command line"

for module in $(cat /modules.order); do
  insmod "/modules/$module" || fail "insmod $module failed"
done

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || fail "cannot mount the host's root"
mount -t tmpfs -o size=6g tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "cannot mount the overlay"
mkdir -p "/newroot/lib/modules/$release" /newroot/flowtel-vm
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose modules "/newroot/lib/modules/$release" || fail "cannot mount the modules"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /newroot/flowtel-vm || fail "cannot mount the results share"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$guest_init"
