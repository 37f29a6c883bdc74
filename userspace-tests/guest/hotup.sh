# hotup's guest-side helpers: the device, the control node, the classic
# upgrade sequence and the fio jobs. Sourced by the scenario library (lib.sh),
# by the long-lived guest's agent (qemu/agent.sh) and by `cargo xtask
# upgrade-child`. Needs $MODULES (the built modules).
MODULES="${MODULES:-${HOTUP_MODULES:?HOTUP_MODULES is not set}}"
HOTUP_OUT="${HOTUP_OUT:-/tmp}"
DEV=/dev/hotupblk0
CTL=/dev/hotup-ctl

# current_child: the active child's module name (empty if none): the
# parent's word when it is loaded (a standby or retired child may be loaded
# too), else the first hotup child in /proc/modules.
current_child() {
    if [ -e "$CTL" ]; then
        _c=$(tr ' ' '\n' < "$CTL" | sed -n 's/^child=//p')
        [ "$_c" = - ] || echo "$_c"
        return
    fi
    sed -n 's/^\(hotup_child_v[0-9]*\) .*/\1/p' /proc/modules | head -n 1
}

# ctl KEY: one field of the parent's status line (/dev/hotup-ctl).
ctl() { tr ' ' '\n' < "$CTL" | sed -n "s/^$1=//p"; }

# ctl_errno TEXT: writes TEXT to the control node in one write(2); prints
# OK or the errno's name (EINVAL, EBUSY, EPERM, ...).
ctl_errno() {
    python3 -c 'import os,sys,errno
fd=os.open(sys.argv[1],os.O_WRONLY)
try:
    os.write(fd,sys.argv[2].encode()); print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno,e.errno))' "$CTL" "$1"
}

# sysfs KEY: one of the parent's sysfs attributes (/sys/block/hotupblk0/hotup/).
sysfs() { cat "/sys/block/${DEV#/dev/}/hotup/$1"; }

# load_parent [PARAM=VALUE...]: insmod the parent and check its nodes: the
# disk of a RAM parent is there at once; with nvme_pci=1 each controller's
# disk comes with the first child's adopt (its geometry is the namespace's).
load_parent() {
    insmod "$MODULES/hotup_parent.ko" "$@" || return 1
    case " $* " in
    *" nvme_pci=1 "*) [ -c "$CTL" ] && [ -c /dev/hotup0 ] ;;
    *) [ -b "$DEV" ] && [ -c "$CTL" ] ;;
    esac
}

# load_child N [PARAM=VALUE...]: insmod hotup_child_vN.
load_child() { _v=$1; shift; insmod "$MODULES/hotup_child_v$_v.ko" "$@"; }

# upgrade_ko KO SCHEMA [PARAM=VALUE...]: the classic upgrade from the loaded
# child to the module KO: tell the parent which device-state schema KO reads
# (a downgrade makes v2 write v1), unload the old child (it drains and
# exports), load the new one (it adopts). With no child loaded (the device is
# parked after a refused adopt), it only loads KO, which adopts the stashed
# state: that is the recovery.
# `hotupctl upgrade --mode classic` does it in one process that has KO open
# before the old child goes, so the time with no child loaded holds only the
# kernel's unload and load, not the start of rmmod and insmod and the read
# of the module file; it prints its report, and on a failure a last line
# `hotupctl: ...` that says why (the scenarios' check shows it) and exits
# non-zero. With HOTUP_SWAP=commands: rmmod + insmod, as by hand.
upgrade_ko() {
    _ko=$1; _schema=$2; shift 2
    if [ "${HOTUP_SWAP:-}" != commands ]; then
        [ -x "$MODULES/hotupctl" ] || { echo "no $MODULES/hotupctl: cargo xtask build puts it there" >&2; return 1; }
        _p=; for _a in "$@"; do _p="$_p --param $_a"; done
        # shellcheck disable=SC2086 # each --param KEY=VALUE is two words
        "$MODULES/hotupctl" --ctl "$CTL" upgrade "$_ko" --mode classic --schema "$_schema" $_p
        return
    fi
    _from=$(current_child)
    echo "export-schema $_schema" > "$CTL" || return 1
    if [ -n "$_from" ]; then rmmod "$_from" || return 1; fi
    insmod "$_ko" "$@"
}

# upgrade_to N [PARAM=VALUE...]: classic upgrade to hotup_child_vN (schema N).
# $HOTUP_INJECT (e.g. "inject_lost_writes=64", set by `cargo xtask test
# --inject`) adds fault-injection parameters to every new child: the proof
# that a scenario's checks see the fault.
upgrade_to() { _to=$1; shift; upgrade_ko "$MODULES/hotup_child_v$_to.ko" "$_to" "$@" ${HOTUP_INJECT:-}; }

# standby_to N [PARAM=VALUE...]: the standby switch to hotup_child_vN: a
# retired child of that name is unloaded first, the new one is loaded (it
# registers as the standby, next to the active child), then `switch` is
# written to the control node (it returns once the new child is active, or
# fails with the rollback's errno). $HOTUP_INJECT goes to the new child.
standby_to() {
    _to=$1; shift
    if grep -q "^hotup_child_v$_to " /proc/modules; then rmmod "hotup_child_v$_to" || return 1; fi
    echo "export-schema $_to" > "$CTL" || return 1
    insmod "$MODULES/hotup_child_v$_to.ko" "$@" ${HOTUP_INJECT:-} || return 1
    echo switch > "$CTL"
}

# unload_retired: rmmod every hotup child (RAM or NVMe) but the active one
# (children a standby switch retired), e.g. before a classic upgrade loads
# one of them.
unload_retired() {
    _cur=$(current_child)
    for _m in $(sed -n 's/^\(hotup_\(child\|nvme\)_v[0-9]*\) .*/\1/p' /proc/modules); do
        [ "$_m" = "$_cur" ] || rmmod "$_m" || return 1
    done
}

# wait_completions N [TIMEOUT_S]: wait until the parent has completed N more
# requests than when called (pacing by real progress, not by the clock).
# Every timeout of the guest helpers is multiplied by $HOTUP_TIME_SCALE (5
# on the debug kernel, which runs several times slower).
wait_completions() {
    _start=$(ctl completed); _want=$((_start + $1)); _deadline=$(( $(cut -d. -f1 /proc/uptime) + ${2:-60} * ${HOTUP_TIME_SCALE:-1} ))
    while [ "$(ctl completed)" -lt "$_want" ]; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$_deadline" ] || return 1
        sleep 0.05   # poll interval of a condition wait
    done
}

# wait_writes N [TIMEOUT_S]: wait until the disk has completed N more writes
# than when called (the block layer's count, /sys/block/.../stat field 5):
# "under load" means writes flow, not only reads.
wait_writes() {
    _w() { set -- $(cat "/sys/block/${DEV#/dev/}/stat"); echo "$5"; }
    _start=$(_w); _want=$((_start + $1)); _deadline=$(( $(cut -d. -f1 /proc/uptime) + ${2:-60} * ${HOTUP_TIME_SCALE:-1} ))
    while [ "$(_w)" -lt "$_want" ]; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$_deadline" ] || return 1
        sleep 0.05   # poll interval of a condition wait
    done
}

# fio_json_field FILE JOB DIR KEY: a number from fio's JSON output, e.g.
# `fio_json_field out.json verify read total_ios` (python3 is on the host root).
fio_json() {
    python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
j=[j for j in d["jobs"] if j["jobname"]==sys.argv[2]][0]
v=j[sys.argv[3]] if len(sys.argv)<5 else j[sys.argv[3]][sys.argv[4]]
print(v)' "$@"
}

# use_device DEV: point the helpers and fio jobs at block device DEV
# ($DEV: /dev/hotupblk0 unless a scenario picks another, e.g. a real NVMe
# namespace). FIO_VERIFY, the options shared by hotup's fio jobs: every
# 4 KiB carries its own verify header (offset + CRC32C), so any later read
# of any range can be checked.
use_device() {
    DEV=$1
    FIO_VERIFY="--ioengine=libaio --direct=1 --verify=crc32c --verify_interval=4096 --blockalign=4k --filename=$DEV"
}
use_device "$DEV"

# fio_prefill MIB: write verify headers over the whole device.
fio_prefill() {
    fio --name=prefill $FIO_VERIFY --size=${1}M --rw=write --bs=64k --iodepth=16 --do_verify=0 \
        --output-format=json --output="$HOTUP_OUT/fio-prefill.json"
}

# fio_readback MIB: read the whole device back and verify every 4 KiB.
fio_readback() {
    fio --name=readback $FIO_VERIFY --size=${1}M --rw=read --bs=64k --iodepth=16 --verify_fatal=1 \
        --output-format=json --output="$HOTUP_OUT/fio-readback.json"
}

# The live workload, able to see a lost write. fio checks a block's seed
# and sequence number only for a fixed block size, outside time_based and
# verify_backlog modes (it then takes the expected values from the block
# itself), so a write the driver acknowledged and dropped would leave an
# older, still well-formed block and pass a CRC-only check. So the writer
# runs in passes: each pass (its own fio process) writes every 4 KiB block
# of the device exactly once, then reads every block back and checks offset,
# seed, sequence number and CRC. Odd passes write in random order, even
# passes in order: measured here, two random passes write the same header
# to a block whatever their --randseed, so a block a pass failed to write
# would still look right; with the order alternating, a block's sequence
# number differs from one pass to the next, and a dropped or stale write
# fails its pass ("verify: bad header numberio").

# fio_pass MIB SEED [FIO_ARGS...]: one such pass; its JSON goes to
# $HOTUP_OUT/fio-pass-SEED.json, and with $FIO_LOG_DIR set its latency and
# IOPS logs (100 ms buckets, epoch time stamps) to passSEED_*.log there.
fio_pass() {
    _mib=$1; _seed=$2; shift 2
    _rw=randwrite; [ $((_seed % 2)) -eq 0 ] && _rw=write
    fio --name=pass $FIO_VERIFY --size=${_mib}M --rw=$_rw --bs=4k --iodepth=32 \
        --randseed=$_seed --do_verify=1 --verify_fatal=1 "$@" \
        ${FIO_LOG_DIR:+--write_lat_log=$FIO_LOG_DIR/pass$_seed --write_iops_log=$FIO_LOG_DIR/pass$_seed \
            --log_avg_msec=100 --log_max_value=1 --log_unix_epoch=1} \
        --output-format=json --output="$HOTUP_OUT/fio-pass-$_seed.json"
}

# fio_live MIB [FIO_ARGS...]: start the live workload in the background
# (sets FIO): the pass writer above, looping until fio_live_stop, beside a
# random reader; FIO_ARGS go to every pass (e.g. latency logs). The writer's
# status is in $HOTUP_OUT/fio-live.rc once it has stopped: 0, or the failed
# pass's fio status; $HOTUP_OUT/fio-live.log has fio's messages.
fio_live() {
    _mib=$1; shift
    rm -f "$HOTUP_OUT"/fio-pass-*.json "$HOTUP_OUT/fio-live.stop" "$HOTUP_OUT/fio-live.rc"
    (
        _p=0; _rc=0
        while [ ! -e "$HOTUP_OUT/fio-live.stop" ]; do
            _p=$((_p + 1))
            fio_pass "$_mib" "$_p" "$@" >> "$HOTUP_OUT/fio-live.log" 2>&1 || { _rc=$?; break; }
        done
        echo "$_p" > "$HOTUP_OUT/fio-live.passes"
        echo "$_rc" > "$HOTUP_OUT/fio-live.rc"
        [ "$_rc" -eq 0 ]
    ) &
    FIO=$!
    (
        while [ ! -e "$HOTUP_OUT/fio-live.stop" ] && kill -0 $FIO 2>/dev/null; do
            fio --name=load --ioengine=libaio --direct=1 --filename=$DEV --size=${_mib}M --rw=randread \
                --bsrange=4k-64k --iodepth=32 --time_based --runtime=5 \
                --output-format=json --output="$HOTUP_OUT/fio-load.json" > /dev/null 2>&1 || exit 1
        done
    ) &
    FIO_LOAD=$!
}

# fio_live_stop: let the writer finish its current pass (write and verify),
# then stop both; returns the writer's status.
fio_live_stop() {
    touch "$HOTUP_OUT/fio-live.stop"
    wait $FIO; _rc=$?
    wait $FIO_LOAD
    return $_rc
}

# fio_live_totals: "PASSES WRITES VERIFIED ERRORS" over every pass's JSON.
fio_live_totals() {
    python3 -c 'import json,glob,sys
p=w=v=e=0
for f in sorted(glob.glob(sys.argv[1]+"/fio-pass-*.json")):
    try: d=json.load(open(f))
    except Exception: e+=1; continue
    for j in d["jobs"]:
        p+=1; w+=j["write"]["total_ios"]; v+=j["read"]["total_ios"]; e+=j["error"]
print(p,w,v,e)' "$HOTUP_OUT"
}

# The controller node (/dev/hotup0): its ioctls reach the active child and
# park while there is none. nvme-cli (`nvme`) is its client.
NVME_CTRL=/dev/hotup0

# nvme_field KEY CMD...: one field of `nvme CMD... -o json` (numbers come
# quoted or bare; strings with their padding trimmed). sed, not python: each
# program started in the guest costs seconds under TCG.
nvme_field() {
    _k=$1; shift
    nvme "$@" -o json | sed -n "s/^ *\"$_k\" *: *\"\{0,1\}\([^\",]*\).*/\1/p" | sed 's/ *$//' | head -n 1
}

# nvme_feature FID: the current value of feature FID as a decimal number
# (nvme get-feature prints 0x00000150, or 00000000 for zero).
nvme_feature() {
    _v=$(nvme get-feature "$NVME_CTRL" -f "$1" | sed -n 's/.*Current value: *\(0x\)\{0,1\}\([0-9a-fA-F]*\).*/\2/p')
    [ -n "$_v" ] && printf '%d\n' "0x$_v"
}

# nvme_upgrade_to N [PARAM=VALUE...]: the classic upgrade to hotup_nvme_vN,
# by hand: the old child (if one is active: after a refused adopt the
# device is parked with none) drains and exports its queues, then the new
# one is loaded and adopts them (a retired child of its name is unloaded
# first). $HOTUP_INJECT goes to the new child.
nvme_upgrade_to() {
    _to=$1; shift
    echo "export-schema 1" > "$CTL" || return 1
    _c=$(current_child)
    if [ -n "$_c" ]; then rmmod "$_c" || return 1; fi
    # A retired standby of that name (a standby switch left it loaded).
    if grep -q "^hotup_nvme_v$_to " /proc/modules; then rmmod "hotup_nvme_v$_to" || return 1; fi
    insmod "$MODULES/hotup_nvme_v$_to.ko" "$@" ${HOTUP_INJECT:-}
}

# nvme_standby_to N [PARAM=VALUE...]: load hotup_nvme_vN as the standby (a
# retired child of that name is unloaded first), then `switch`.
nvme_standby_to() {
    _to=$1; shift
    if grep -q "^hotup_nvme_v$_to " /proc/modules; then rmmod "hotup_nvme_v$_to" || return 1; fi
    echo "export-schema 1" > "$CTL" || return 1
    insmod "$MODULES/hotup_nvme_v$_to.ko" "$@" ${HOTUP_INJECT:-} || return 1
    echo switch > "$CTL"
}
