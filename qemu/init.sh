#!/bin/sh
# hotup guest init (PID 1). The guest's root is the host's root, read-only over
# 9p, so host tools (fio, e2fsprogs, kmod, busybox) run unchanged. The host
# shares a writable run folder with 9p tag `hotupout`; it holds env.sh (what
# to run) and receives console.log-independent results: dmesg.txt, ktap.txt,
# exit-status.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# devtmpfs makes no /dev/fd (udev would): bash's process substitution
# `<(...)` opens /dev/fd/N, and scripts use /dev/std*.
# Only where absent (a link counts, even a dangling one).
[ -e /dev/fd ] || [ -L /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || [ -L /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || [ -L /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || [ -L /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run
# /tmp becomes a tmpfs, which would hide a checkout that lives under the
# host's /tmp: keep the host's /tmp reachable to bind the checkout back.
mkdir -p /run/host-tmp
mount --bind /tmp /run/host-tmp
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/shm /dev/pts && mount -t tmpfs tmpfs /dev/shm
# The debug kernel's kmemleak is read through debugfs.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
OUT=/tmp/hotup-out
mkdir -p "$OUT"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 hotupout "$OUT"; then
    echo "HOTUP-INIT: cannot mount the run folder (9p tag hotupout)"
    /bin/busybox reboot -f
fi
. "$OUT/env.sh"
case "$HOTUP_REPO" in
/tmp/*)
    mkdir -p "$HOTUP_REPO"
    mount --bind "/run/host-tmp/${HOTUP_REPO#/tmp/}" "$HOTUP_REPO"
    ;;
esac
export HOTUP_OUT="$OUT" HOTUP_REPO HOTUP_MODULES HOTUP_SCRIPT
echo "HOTUP-INIT: ready $(cut -d' ' -f1 /proc/uptime)s, running $HOTUP_SCRIPT"
cd /tmp
/bin/sh "$HOTUP_SCRIPT" </dev/console >/dev/console 2>&1
rc=$?
# kmemleak scans on its own only every 10 minutes: scan now, so a leak of
# this run is in dmesg ("kmemleak: N new suspected memory leaks") for the
# harness, with the objects' backtraces in kmemleak.txt. Twice: a scan that
# finds an unreferenced object whose contents changed since the previous
# scan (for an object allocated since then: always) holds it back as
# possibly in use (kmemleak_scan colours it gray until the next scan), so a
# leak made after the automatic first scan is reported by the second.
if [ -w /sys/kernel/debug/kmemleak ]; then
    echo scan > /sys/kernel/debug/kmemleak
    echo scan > /sys/kernel/debug/kmemleak
    cat /sys/kernel/debug/kmemleak > "$OUT/kmemleak.txt"
fi
dmesg > "$OUT/dmesg.txt"
echo "$rc" > "$OUT/exit-status"
sync
echo "HOTUP-EXIT: $rc"
/bin/busybox reboot -f
