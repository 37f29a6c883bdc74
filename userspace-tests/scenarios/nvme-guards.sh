# description: the controller node's guards: without CAP_SYS_ADMIN only Identify (and on the namespace reads, and writes through a file open for writing) pass, the rest is EACCES; malformed commands get EINVAL/EFAULT, unsupported ones an NVMe status, unknown ioctls ENOTTY; a child of ABI 1.1 (no ioctl) gets ENOTTY while block I/O goes on; 10,000 fuzzed ioctls leave the kernel clean and the device working; calls whose pages live on the device itself, paged out, do not deadlock 6 classic upgrades (inject_faulting_copies=1 does); park_timeout_ms ends a parked call with ETIMEDOUT
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
IO="$MODULES/hotup-ioctl"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "nodes readable and writable by anyone (for the unprivileged cases)" chmod 0666 $NVME_CTRL $DEV
NSZE=$((MIB * 256))

# raw WANT DESC ARGS...: one command by hotup-ioctl; its outcome (ret=... or
# errno=...) must start with WANT.
raw() {
    _want=$1; _d=$2; shift 2
    _got=$("$@" 2>&1 | head -n 1)
    case "$_got" in
        "$_want"*) pass "$_d ($_got)" ;;
        *) fail "$_d" "wanted $_want, got: $_got" ;;
    esac
}

# Privilege (nvme_cmd_allowed).
check "unprivileged: nvme id-ctrl works" sh -c "$NOBODY nvme id-ctrl $NVME_CTRL -o json | grep -q '\"fr\":\"v1'"
check "unprivileged: nvme id-ns works" sh -c "$NOBODY nvme id-ns $DEV -o json | grep -q '\"nsze\":$NSZE'"
raw "errno=EACCES" "unprivileged: smart-log (Get Log Page) refused" $NOBODY "$IO" raw $NVME_CTRL --opcode 2 --nsid 0xffffffff --cdw10 0x007f0002 --data-len 512
raw "errno=EACCES" "unprivileged: set-feature refused" $NOBODY "$IO" raw $NVME_CTRL --opcode 9 --cdw10 4 --cdw11 0x100 --data-len 0
raw "errno=EACCES" "unprivileged: get-feature refused" $NOBODY "$IO" raw $NVME_CTRL --opcode 10 --cdw10 4 --data-len 0
raw "errno=EACCES" "unprivileged: Identify CNS 2 (namespace list) refused" $NOBODY "$IO" raw $NVME_CTRL --opcode 6 --cdw10 2
raw "ret=0x0" "unprivileged: read passthrough on the namespace" $NOBODY "$IO" raw $DEV --ioctl io --opcode 2 --nsid 1 --cdw10 0 --cdw12 0 --data-len 4096
raw "errno=EACCES" "unprivileged: write through a read-only file refused" $NOBODY "$IO" raw $DEV --ioctl io --opcode 1 --nsid 1 --cdw10 0 --cdw12 0 --data-len 4096
raw "ret=0x0" "unprivileged: write through a file open for writing" $NOBODY "$IO" raw $DEV --write --ioctl io --opcode 1 --nsid 1 --cdw10 0 --cdw12 0 --data-len 4096
raw "errno=EACCES" "unprivileged: I/O passthrough on the controller node refused" $NOBODY "$IO" raw $NVME_CTRL --ioctl io --opcode 2 --nsid 1 --cdw10 0 --data-len 4096
check "root: smart-log works" sh -c "nvme smart-log $NVME_CTRL -o json | grep -q power_cycles"

# Malformed and unsupported commands (as root).
raw "errno=EINVAL" "flags != 0" "$IO" raw $NVME_CTRL --flags 1
raw "errno=EFAULT" "data pointer unmapped" "$IO" raw $NVME_CTRL --bad-addr
raw "errno=EFAULT" "command pointer unmapped" "$IO" raw $NVME_CTRL --bad-arg
raw "errno=EINVAL" "Identify into 512 bytes (needs 4096)" "$IO" raw $NVME_CTRL --data-len 512
raw "errno=EINVAL" "I/O of 2 blocks into 4096 bytes" "$IO" raw $DEV --ioctl io --opcode 2 --nsid 1 --cdw12 1 --data-len 4096
raw "ret=0x4001" "unknown admin opcode: Invalid Command Opcode (DNR)" "$IO" raw $NVME_CTRL --opcode 0x7f
raw "ret=0x4001" "unknown I/O opcode: Invalid Command Opcode" "$IO" raw $DEV --ioctl io --opcode 0x7e --nsid 1
raw "ret=0x4002" "unknown feature: Invalid Field in Command" "$IO" raw $NVME_CTRL --opcode 10 --cdw10 0x55 --data-len 0
raw "ret=0x4002" "unknown Identify CNS: Invalid Field" "$IO" raw $NVME_CTRL --cdw10 0x1f
raw "ret=0x400b" "Identify of namespace 2: Invalid Namespace" "$IO" raw $NVME_CTRL --cdw10 0 --nsid 2
raw "ret=0x4080" "read past the namespace's end: LBA Out of Range" "$IO" raw $DEV --ioctl io --opcode 2 --nsid 1 --cdw10 $NSZE --data-len 4096
raw "ret=0x4109" "unknown log page: Invalid Log Page" "$IO" raw $NVME_CTRL --opcode 2 --nsid 0xffffffff --cdw10 0x007f0042 --data-len 512
raw "errno=ENOTTY" "an ioctl the controller does not know" "$IO" raw $NVME_CTRL --ioctl 0x1234
raw "errno=ENOTTY" "NVME_IOCTL_ID on the controller node" "$IO" raw $NVME_CTRL --ioctl id
raw "ret=0x1" "NVME_IOCTL_ID on the namespace: 1" "$IO" raw $DEV --ioctl id
raw "errno=ENOTTY" "a per-file value on the block device (no open-file id)" "$IO" raw $DEV --ioctl 0x40084801
raw "errno=ENODATA" "a per-file value never set reads ENODATA" "$IO" raw $NVME_CTRL --ioctl 0x80084802

# A child of ABI 1.1, whose operations table has no ioctl.
check "standby switch to v2 registering as ABI 1.1" standby_to 2 abi_minor_override=1
expect_dmesg "v2 attached as ABI 1.1" 'hotup: attach gen=[0-9]+ child=hotup_child_v2 version=2 abi=1\.1 '
raw "errno=ENOTTY" "ABI 1.1 child: Identify gets ENOTTY" "$IO" raw $NVME_CTRL
check "ABI 1.1 child: block I/O goes on" dd if=$DEV of=/dev/null bs=4096 count=64 iflag=direct status=none
check "switch back to v1 (ABI 1.2)" standby_to 1
check "v1: nvme id-ctrl works again" sh -c "nvme id-ctrl $NVME_CTRL -o json | grep -q '\"fr\":\"v1'"

# The fuzzer: random numbers, sizes, struct contents and pointers.
fuzz() {
    _d=$1; shift
    if _out=$("$@" 2>&1); then diag "$_d: $_out"; pass "$_d"; else fail "$_d" "$(echo "$_out" | tail -n 1)"; fi
}
fuzz "fuzz the controller node as root, 4000 ioctls" "$IO" fuzz $NVME_CTRL --iterations 4000 --seed 1
fuzz "fuzz the namespace as root, 4000 ioctls" "$IO" fuzz $DEV --iterations 4000 --seed 2
fuzz "fuzz the controller node unprivileged, 2000 ioctls" $NOBODY "$IO" fuzz $NVME_CTRL --iterations 2000 --seed 3
check "after fuzzing: nvme id-ctrl works" sh -c "nvme id-ctrl $NVME_CTRL -o json | grep -q '\"fr\":\"v1'"
check "after fuzzing: the device reads and writes" sh -c \
    "dd if=/dev/urandom of=/tmp/g bs=4096 count=8 status=none && dd if=/tmp/g of=$DEV bs=4096 seek=4000 oflag=direct status=none && dd if=$DEV bs=4096 skip=4000 count=8 iflag=direct status=none | cmp - /tmp/g"
check "after fuzzing: an upgrade works" standby_to 2
check "no request failed" test "$(ctl failed)" -eq 0

# A call whose command and data pages live on this very device and are
# dropped from memory before every call, during classic upgrades: the
# child's copies fault on pages that must be read from the device while a
# switch holds its I/O. The child copies with faults disabled and the
# parent faults the range in outside the barrier, so nothing deadlocks.
# `cargo xtask test --inject inject_faulting_copies=1 --scenario
# nvme-guards` gives the upgraded children ordinary, sleeping copies: an
# upgrade then hangs (the caller waits for a page whose read is parked, the
# switch for the caller) and the scenario fails at its timeout.
check "unload the retired child" unload_retired
check "ext4 on the namespace" mkfs.ext4 -q -F $DEV
mkdir -p /tmp/hfs
check "mount it" mount -t ext4 $DEV /tmp/hfs
rm -f "$HOTUP_OUT/paged.stop" "$HOTUP_OUT/paged.progress"
"$IO" hold $NVME_CTRL --until "$HOTUP_OUT/paged.stop" --buffer-file /tmp/hfs/buffers \
    --progress "$HOTUP_OUT/paged.progress" > "$HOTUP_OUT/paged.txt" 2>&1 &
PG=$!
paged() { cat "$HOTUP_OUT/paged.progress" 2>/dev/null || echo 0; }
wait_for "paged calls flow" 120 sh -c "[ \$(cat $HOTUP_OUT/paged.progress 2>/dev/null || echo 0) -ge 100 ]"
for i in 1 2 3 4 5 6; do
    to=$(( (i + 1) % 2 + 1 ))
    n=$(paged)
    check "paged calls: classic upgrade $i to v$to (each call stays 2 ms in the child)" \
        upgrade_to $to inject_call_delay_us=2000
    wait_for "paged calls flow after upgrade $i" 120 sh -c "[ \$(cat $HOTUP_OUT/paged.progress) -ge $((n + 100)) ]"
done
touch "$HOTUP_OUT/paged.stop"
wait $PG; rc=$?
check "paged calls: every call succeeded" test $rc -eq 0
diag "paged holder: $(cat "$HOTUP_OUT/paged.txt")"
check "paged calls reached both versions" grep -qE 'versions=v[12],v[12]' "$HOTUP_OUT/paged.txt"
check "umount" umount /tmp/hfs

# park_timeout_ms ends a parked call with ETIMEDOUT.
check "rmmod the retired child" unload_retired
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
check "load parent with park_timeout_ms=1000" load_parent capacity_mib=$MIB park_timeout_ms=1000
dmesg_mark
t0=$(date +%s%N)
raw "errno=ETIMEDOUT" "no child: a call parks, then times out" "$IO" raw $NVME_CTRL
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "the call returned after $waited ms"
check "it waited at least the timeout" test $waited -ge 1000
expect_dmesg "the timeout is logged" 'hotup: park-timeout calls=1 timeout_ms=1000 waited_ms=[0-9]+ status=ETIMEDOUT'
check "sysfs counts it" test "$(ctl call_timeouts)" -eq 1
check "rmmod parent" rmmod hotup_parent
finish
