# The benchmark (`cargo xtask bench`), one guest boot. Results are files in
# $HOTUP_OUT/bench, which the host reads (xtask/src/bench.rs); progress
# lines "bench: I/N PART WHAT" go to the console. Parts ($HOTUP_BENCH_PARTS,
# space separated):
#   overhead  fio 4k random read/write, QD1/QD32, 1 and 2 jobs, on hotup
#             (parent + child v2), hotup_mono (the same driver with no
#             parent) and brd, all loaded at once; every configuration in
#             $HOTUP_BENCH_ROUNDS rounds, each round running the peers one
#             after the other (the order rotates per round), so drift hits
#             every peer alike. With $HOTUP_BENCH_PROFILE=1, each
#             configuration then runs once more on hotup under a system-wide
#             perf cpu-clock profile (profile-CONFIG.txt: perf report by
#             symbol), which shows how much of the CPU the parent's code takes.
#   size      standby and classic upgrades under 4k random writes at QD32 on
#             devices of each size in $HOTUP_BENCH_SIZES (MiB).
#   load      standby and classic upgrades under 4k random writes at each
#             iodepth of $HOTUP_BENCH_DEPTHS, with the child at each latency
#             of $HOTUP_BENCH_LATENCIES (us); each cell first runs the same
#             workload with no upgrade (its p99 is the latency-hit baseline)
#             and logs every I/O's latency while it upgrades.
#   peer      QEMU's NVMe controller driven by hotup (parent nvme_pci=1 +
#             hotup_nvme_v1) and by the kernel's own nvme driver, moved
#             between them by driver_override: fio 4k random read/write at
#             each of $HOTUP_BENCH_PEER_CONFIGS, $HOTUP_BENCH_ROUNDS rounds,
#             the two drivers alternating (hotup first in odd rounds, the
#             kernel's first in even ones). With $HOTUP_BENCH_PROFILE=1, in
#             every round each configuration runs once more on each driver
#             under a system-wide perf cpu-clock profile by module and
#             symbol (peer-profile-CONFIG-DRIVER-rN.txt): the CPU each
#             driver spends for the same I/O count, paired per round.
# Upgrades are hotupctl's (its JSON line per upgrade: mode, blackout and its
# parts, start time), $HOTUP_BENCH_UPGRADES per mode per cell, alternating
# standby and classic.
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
B="$HOTUP_OUT/bench"
mkdir -p "$B"
PARTS=${HOTUP_BENCH_PARTS:-overhead size load}
ROUNDS=${HOTUP_BENCH_ROUNDS:-3}
RUNTIME=${HOTUP_BENCH_RUNTIME:-4}
SIZES=${HOTUP_BENCH_SIZES:-16 256 1024}
DEPTHS=${HOTUP_BENCH_DEPTHS:-1 32 128}
LATENCIES=${HOTUP_BENCH_LATENCIES:-100 5000}
UPGRADES=${HOTUP_BENCH_UPGRADES:-4}
CONFIGS=${HOTUP_BENCH_CONFIGS:-randread-qd1-j1 randwrite-qd1-j1 randread-qd32-j1 randwrite-qd32-j1 randread-qd1-j2 randwrite-qd1-j2 randread-qd32-j2 randwrite-qd32-j2}
PEER_CONFIGS=${HOTUP_BENCH_PEER_CONFIGS:-randread-qd1-j1 randwrite-qd1-j1 randread-qd32-j1 randwrite-qd32-j1}
BRD=${HOTUP_BRD:?set by cargo xtask bench: the kernel build tree brd.ko}
HOTUPCTL="$MODULES/hotupctl"
# Measured steps, for the progress lines.
STEP=0
TOTAL=${HOTUP_BENCH_STEPS:-0}
step() { STEP=$((STEP + 1)); echo "bench: $STEP/$TOTAL $*"; }

FIO_BASE="--ioengine=libaio --direct=1 --bs=4k --norandommap --randrepeat=0 --output-format=json"

# unload_all: no hotup, mono or brd module left (between parts).
unload_all() {
    for m in $(lsmod | awk '/^hotup_(child|nvme)_v/ {print $1}'); do rmmod "$m"; done
    lsmod | grep -q '^hotup_parent ' && rmmod hotup_parent
    lsmod | grep -q '^hotup_mono ' && rmmod hotup_mono
    lsmod | grep -q '^brd ' && rmmod brd
    lsmod | grep -q '^nvme ' && rmmod nvme nvme-core
    return 0
}

# other_child: the module file of the child version the active one is not.
other_child() {
    case "$(current_child)" in
        hotup_child_v1) echo "$MODULES/hotup_child_v2.ko" ;;
        *) echo "$MODULES/hotup_child_v1.ko" ;;
    esac
}

# upgrade MODE JSONL [PARAM=VALUE...]: one hotupctl upgrade to the other
# child version; its JSON report is appended to JSONL.
upgrade() {
    _mode=$1; _out=$2; shift 2
    _p=""; for _a in "$@"; do _p="$_p --param $_a"; done
    _to=$(other_child)
    # v1 reads device-state schema 1: the leaving v2 exports that one.
    case $_to in *_v1.ko) _p="$_p --schema 1" ;; esac
    "$HOTUPCTL" upgrade "$_to" --mode "$_mode" --json $_p > "$B/hotupctl.json" || return 1
    tr -d '\n' < "$B/hotupctl.json" >> "$_out"; echo >> "$_out"
}

# upgrades JSONL N GAP_COMPLETIONS [PARAM=VALUE...]: N standby and N classic
# upgrades, alternating, each after GAP_COMPLETIONS more completed requests
# and at least 1.5 s after the last one ended (so the latency windows of two
# upgrades, a second each, never overlap: a measurement spacing, not a
# wait for anything).
upgrades() {
    _out=$1; _n=$2; _gap=$3; shift 3
    : > "$_out"
    _i=0; _last=0
    while [ $_i -lt $((2 * _n)) ]; do
        _mode=standby; [ $((_i % 2)) -eq 1 ] && _mode=classic
        wait_completions "$_gap" || return 1
        while [ $_i -gt 0 ] && [ "$(now_cs)" -lt $((_last + 150)) ]; do
            sleep 0.1   # measurement spacing (see above)
        done
        upgrade $_mode "$_out" "$@" || return 1
        _last=$(now_cs)
        _i=$((_i + 1))
    done
}

# now_cs: guest uptime in centiseconds.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

# bg_fio NAME DEV [FIO_ARGS...]: fio in the background until bg_fio_stop
# (time_based with a long runtime; SIGINT ends it and it still writes its
# JSON to $B/NAME.json).
bg_fio() {
    _name=$1; _dev=$2; shift 2
    fio --name="$_name" --filename="$_dev" $FIO_BASE --time_based --runtime=3600 "$@" \
        --output="$B/$_name.json" > /dev/null 2>&1 &
    BG_FIO=$!
}
bg_fio_stop() { kill -INT $BG_FIO; wait $BG_FIO; true; }

# overhead_args CONFIG DEV MIB OUT: fio's arguments for one measured run of
# an overhead configuration (randread-qd32-j2: 4k random reads, iodepth 32,
# 2 jobs), for fio itself or for fio under perf. Job i runs on CPU i: with
# two vCPUs, where the scheduler puts the jobs (both on one CPU, or one each)
# moved a run's IOPS more than any driver difference.
overhead_args() {
    _rw=${1%%-*}; _qd=${1#*-qd}; _qd=${_qd%%-*}; _j=${1##*-j}
    echo "--name=$1 --filename=$2 $FIO_BASE --rw=$_rw --iodepth=$_qd --numjobs=$_j" \
        "--cpus_allowed=0-$((_j - 1)) --cpus_allowed_policy=split" \
        "--group_reporting --size=${3}M --time_based --runtime=$RUNTIME --ramp_time=1 --output=$4"
}

# profile_overhead MIB: every configuration once more on hotup, under a
# system-wide cpu-clock profile (TCG has no hardware PMU). perf writes its
# data to the guest's tmpfs (it cannot write a perf.data over 9p) and the
# report by symbol to $B/profile-CONFIG.txt.
profile_overhead() {
    echo 0 > /proc/sys/kernel/kptr_restrict
    echo -1 > /proc/sys/kernel/perf_event_paranoid
    for cfg in $CONFIGS; do
        step "overhead profile $cfg hotup"
        check "overhead: profile $cfg on hotup" \
            perf record -q -e cpu-clock -F 2000 -a -o /tmp/bench-perf.data -- \
            fio $(overhead_args $cfg /dev/hotupblk0 $1 "$B/profile-$cfg-fio.json") || return 1
        perf report -i /tmp/bench-perf.data --stdio --no-children --sort sym \
            > "$B/profile-$cfg.txt" 2> "$B/profile-$cfg.err" \
            || fail "overhead: perf report $cfg" "see $B/profile-$cfg.err"
        rm -f /tmp/bench-perf.data
    done
}

part_overhead() {
    _mib=256
    check "overhead: load hotup (parent + child v2, latency_us=0)" \
        sh -c "insmod $MODULES/hotup_parent.ko capacity_mib=$_mib && insmod $MODULES/hotup_child_v2.ko latency_us=0" || return 1
    check "overhead: load hotup_mono (latency_us=0)" insmod "$MODULES/hotup_mono.ko" capacity_mib=$_mib latency_us=0 || return 1
    check "overhead: load brd" insmod "$BRD" rd_nr=1 rd_size=$((_mib * 1024)) || return 1
    # brd allocates a page at its first write (reading a hole is a memset):
    # every device is written once over, so all serve reads from memory.
    for d in /dev/hotupblk0 /dev/hotupmono0 /dev/ram0; do
        check "overhead: prefill $d" fio --name=prefill --filename=$d $FIO_BASE --bs=1M --rw=write \
            --iodepth=8 --size=${_mib}M --output="$B/prefill-${d#/dev/}.json" || return 1
    done
    _peers="hotup mono brd"
    _r=1
    while [ $_r -le "$ROUNDS" ]; do
        for cfg in $CONFIGS; do
            for p in $_peers; do
                case $p in hotup) _d=/dev/hotupblk0 ;; mono) _d=/dev/hotupmono0 ;; brd) _d=/dev/ram0 ;; esac
                step "overhead round $_r $cfg $p"
                fio $(overhead_args $cfg $_d $_mib "$B/overhead-$cfg-$p-r$_r.json") > /dev/null 2>&1 \
                    || fail "overhead: fio $cfg on $p (round $_r)" "see $B/overhead-$cfg-$p-r$_r.json"
            done
        done
        # Rotate the order: A B C, B C A, C A B, ...
        _peers="${_peers#* } ${_peers%% *}"
        _r=$((_r + 1))
    done
    pass "overhead: $ROUNDS rounds"
    [ "${HOTUP_BENCH_PROFILE:-0}" = 1 ] && profile_overhead $_mib
    unload_all
}

part_size() {
    for s in $SIZES; do
        step "size $s MiB"
        check "size $s MiB: load hotup" \
            sh -c "insmod $MODULES/hotup_parent.ko capacity_mib=$s && insmod $MODULES/hotup_child_v1.ko" || return 1
        bg_fio "size-$s-fio" /dev/hotupblk0 --rw=randwrite --iodepth=32 --size=${s}M
        check "size $s MiB: $UPGRADES standby and $UPGRADES classic upgrades under fio" \
            upgrades "$B/size-$s.jsonl" "$UPGRADES" 500
        bg_fio_stop
        check "size $s MiB: no request failed" test "$(ctl failed)" -eq 0
        unload_all
    done
}

part_load() {
    for l in $LATENCIES; do
        # 128 tags per queue: iodepth 128 on one CPU's queue is really 128.
        check "load latency_us=$l: load hotup" \
            sh -c "insmod $MODULES/hotup_parent.ko capacity_mib=256 queue_depth=128 && insmod $MODULES/hotup_child_v1.ko latency_us=$l" || return 1
        for q in $DEPTHS; do
            _c="load-l$l-q$q"
            step "load latency_us=$l iodepth=$q baseline"
            fio --name=$_c --filename=/dev/hotupblk0 $FIO_BASE --rw=randwrite --iodepth=$q --size=256M \
                --time_based --runtime=$RUNTIME --ramp_time=1 --output="$B/$_c-base.json" > /dev/null 2>&1 \
                || fail "load: baseline fio $_c" "see $B/$_c-base.json"
            step "load latency_us=$l iodepth=$q upgrades"
            bg_fio "$_c" /dev/hotupblk0 --rw=randwrite --iodepth=$q --size=256M \
                --write_lat_log="$B/$_c" --log_avg_msec=0 --log_unix_epoch=1
            # Gap: enough completions that fio is past its start at QD128.
            check "load latency_us=$l iodepth=$q: $UPGRADES standby and $UPGRADES classic upgrades under fio" \
                upgrades "$B/$_c.jsonl" "$UPGRADES" 200 latency_us=$l
            bg_fio_stop
        done
        check "load latency_us=$l: no request failed" test "$(ctl failed)" -eq 0
        unload_all
    done
}

# The peer part: one NVMe controller, moved between the two drivers.
PEER_MIB=256
NVME_KO="${HOTUP_KBUILD:-}/drivers/nvme/host"
peer_bdf() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat $d/vendor):$(cat $d/device)" = 0x1b36:0x0010 ] && basename $d
    done
}
# kernel_disk: the kernel driver's block device of the controller, if bound.
kernel_disk() {
    for n in /sys/bus/pci/devices/$BDF/nvme/nvme*/nvme*n1; do
        [ -e "$n" ] && echo "/dev/${n##*/}" && return 0
    done
    return 1
}
# peer_unbind: the controller bound to no driver (hotup's modules unloaded:
# the parent disables the controller at its unbind).
peer_unbind() {
    for m in $(lsmod | awk '/^hotup_nvme_v/ {print $1}'); do rmmod "$m" || return 1; done
    if lsmod | grep -q '^hotup_parent '; then rmmod hotup_parent || return 1; fi
    if [ -e /sys/bus/pci/devices/$BDF/driver ]; then
        echo "$BDF" > /sys/bus/pci/devices/$BDF/driver/unbind || return 1
    fi
}
# peer_use hotup|nvme: bind the controller to that driver (peer_dev then
# names its block device).
peer_use() {
    peer_unbind || return 1
    case $1 in
        hotup)
            echo hotup_parent > /sys/bus/pci/devices/$BDF/driver_override || return 1
            insmod "$MODULES/hotup_parent.ko" nvme_pci=1 capacity_mib=$PEER_MIB || return 1
            insmod "$MODULES/hotup_nvme_v1.ko" || return 1 ;;
        nvme)
            echo nvme > /sys/bus/pci/devices/$BDF/driver_override || return 1
            if lsmod | grep -q '^nvme '; then
                echo "$BDF" > /sys/bus/pci/drivers/nvme/bind || return 1
            else
                insmod "$NVME_KO/nvme-core.ko" && insmod "$NVME_KO/nvme.ko" || return 1
            fi
            # The kernel driver scans namespaces asynchronously.
            _deadline=$(( $(cut -d. -f1 /proc/uptime) + 60 ))
            until [ -b "$(kernel_disk)" ]; do
                [ "$(cut -d. -f1 /proc/uptime)" -lt "$_deadline" ] || return 1
                sleep 0.05   # poll interval of a condition wait
            done ;;
    esac
}

# irq_spread PATTERN: for each vector in /proc/interrupts whose name
# matches PATTERN, its interrupts per CPU and the CPUs it is delivered to
# (a completion taken on another CPU than the submitter's costs a wake-up
# across vCPUs).
irq_spread() {
    awk -v p="$1" '$0 ~ p { n = $1; sub(":", "", n); s = "irq " n ":";
        for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s = s " cpu" (i - 2) "=" $i;
        print s " " $NF }' /proc/interrupts | while read -r l; do
        _irq=${l#irq }; _irq=${_irq%%:*}
        echo "$l effective=$(cat /proc/irq/$_irq/effective_affinity_list 2>/dev/null)"
    done
}

# peer_dev hotup|nvme: the block device of the controller under that driver.
peer_dev() { if [ $1 = hotup ]; then echo /dev/hotupblk0; else kernel_disk; fi; }

# peer_profile CONFIG DRIVER ROUND: CONFIG once more on DRIVER under a
# system-wide cpu-clock profile (perf writes to the guest's tmpfs: not over
# 9p), reported by module and symbol with sample counts.
peer_profile() {
    _f="$B/peer-profile-$1-$2-r$3"
    perf record -q -e cpu-clock -F 2000 -a -o /tmp/bench-perf.data -- \
        fio $(overhead_args $1 $PEER_DEV $PEER_MIB "$_f.json") > /dev/null 2>&1 \
        || { fail "peer: profile $1 on $2 (round $3)" "see $_f.json"; return 1; }
    perf report -i /tmp/bench-perf.data --stdio --no-children -n --sort dso,sym \
        > "$_f.txt" 2> "$_f.err" || fail "peer: perf report $1 $2 (round $3)" "see $_f.err"
    rm -f /tmp/bench-perf.data
}

part_peer() {
    BDF=$(peer_bdf)
    check "peer: one NVMe controller (1b36:0010)" test -n "$BDF" -a "$(echo $BDF | wc -w)" -eq 1 || return 1
    if [ "${HOTUP_BENCH_PROFILE:-0}" = 1 ]; then
        echo 0 > /proc/sys/kernel/kptr_restrict
        echo -1 > /proc/sys/kernel/perf_event_paranoid
    fi
    _order="hotup nvme"
    _r=1
    while [ $_r -le "$ROUNDS" ]; do
        for drv in $_order; do
            check "peer round $_r: the controller on $drv" peer_use $drv || return 1
            PEER_DEV=$(peer_dev $drv)
            diag "peer round $_r: $drv on $PEER_DEV, scheduler: $(cat /sys/block/${PEER_DEV#/dev/}/queue/scheduler)"
            for cfg in $PEER_CONFIGS; do
                step "peer round $_r $cfg $drv"
                fio $(overhead_args $cfg $PEER_DEV $PEER_MIB "$B/peer-$cfg-$drv-r$_r.json") > /dev/null 2>&1 \
                    || fail "peer: fio $cfg on $drv (round $_r)" "see $B/peer-$cfg-$drv-r$_r.json"
            done
            if [ "${HOTUP_BENCH_PROFILE:-0}" = 1 ]; then
                for cfg in $PEER_CONFIGS; do
                    step "peer round $_r profile $cfg $drv"
                    peer_profile $cfg $drv $_r || return 1
                done
            fi
            irq_spread "$([ $drv = hotup ] && echo hotup_nvme || echo 'nvme[0-9]q')" | while read -r l; do
                diag "peer round $_r: $drv $l"
            done
            if [ $drv = hotup ]; then
                check "peer round $_r: hotup failed no request" test "$(ctl failed)" -eq 0
            fi
        done
        _order="${_order#* } ${_order%% *}"
        _r=$((_r + 1))
    done
    pass "peer: $ROUNDS rounds"
    check "peer: the controller unbound at the end" peer_unbind
    expect_no_dmesg "peer: no I/O error or timeout from either driver" 'I/O error|blk_update_request|nvme.*timeout|hotup: error'
}

for part in $PARTS; do
    case $part in
        overhead) part_overhead ;;
        size) part_size ;;
        load) part_load ;;
        peer) part_peer ;;
        *) fail "unknown part $part" "use overhead, size, load or peer" ;;
    esac
done
unload_all
finish
