#!/bin/bash
# PID 1 of a kernel-matrix VM once its root is up (the host's root, read-only,
# under a tmpfs overlay; see initramfs-init.sh). Mounts what a Kubernetes node
# has (cgroup v2 at /sys/fs/cgroup, bpffs, tracefs), lets the guest kernel's
# own modules load, runs the command the host left in the results share with
# its output on the second serial port (the host streams it), writes the exit
# code next to it and powers off.
RESULTS=/flowtel-vm
OUT=/dev/ttyS1

mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# A fresh /run: the host's (netns names, sockets, pid files) mean nothing here. /tmp stays the host's, under
# the overlay: a test on the host can hand the guest a directory it made there.
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

stty -F "$OUT" raw -echo 2>/dev/null
exec > "$OUT" 2>&1

# PID 1 must not exit while the kernel powers off (it would panic), so power_off waits on this. It starts now:
# once power-off begins the root share goes away, and no program could be loaded from it any more.
sleep infinity &
KEEPALIVE=$!

power_off() {
  sync
  echo o > /proc/sysrq-trigger
  wait "$KEEPALIVE"
}

hostname "flowtel-vm-$(uname -r | tr -c "a-zA-Z0-9.\n-" "-")"
ip link set lo up
# What the tests need from modules; the kernel would also load most on demand through modprobe.
modprobe -a -q veth bridge nf_tables nft_ct nft_reject_inet nf_reject_ipv4 nf_reject_ipv6 sch_tbf sch_netem 2>/dev/null

if [ ! -r "$RESULTS/command" ]; then
  echo "guest-init: no command in the results share"
  power_off
fi
set -a
# shellcheck disable=SC1091
[ -r "$RESULTS/env" ] && . "$RESULTS/env"
set +a
cd "${FLOWTEL_VM_CWD:-/}" || { echo "guest-init: no directory ${FLOWTEL_VM_CWD}"; power_off; }
echo "guest-init: $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
bash "$RESULTS/command"
status=$?
echo "$status" > "$RESULTS/exit-code"
if [ "$status" -ge 128 ]; then
  # Killed by a signal: the kernel logged where (instruction pointer and the file mapped there).
  echo "guest-init: the command died of signal $((status - 128)); the guest kernel says:"
  dmesg | grep -iE 'segfault|trap|general protection|killed process|out of memory' | tail -n 20
fi
power_off
