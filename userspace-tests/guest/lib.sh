# Sourced by every guest scenario. KTAP reporting, dmesg expectations and
# module helpers. Results go to the console and to $HOTUP_OUT/ktap.txt, which
# the host parses; the host also checks the script's exit status and dmesg.
set -u
KTAP_FILE="${HOTUP_OUT:-/tmp}/ktap.txt"
MODULES="${HOTUP_MODULES:?HOTUP_MODULES is not set: run scenarios with cargo xtask}"
_ktap_n=0
_ktap_failed=0
_dmesg_mark=0

_ktap_line() { echo "$*"; echo "$*" >> "$KTAP_FILE"; }
_ktap_line "KTAP version 1"

# diag TEXT...: a KTAP diagnostic line.
diag() { _ktap_line "# $*"; }

# _ktap_result ok|"not ok" DESC [REASON]: the one writer of a result line
# (`ok N DESC`, `not ok N DESC # REASON`), numbered in order. Scenarios
# report through pass, fail and the checks below, never by echoing one.
_ktap_result() {
    _ktap_n=$((_ktap_n + 1))
    _ktap_line "$1 $_ktap_n $2${3:+ # $3}"
}

# pass DESC / fail DESC REASON: record one result.
pass() { _ktap_result ok "$1"; }
fail() { _ktap_failed=$((_ktap_failed + 1)); _ktap_result "not ok" "$1" "${2:-failed}"; }

# check DESC CMD...: run CMD, pass if it exits 0, else fail with its output;
# returns 1 on failure (so `check ... || break` works).
check() {
    _desc=$1; shift
    if _out=$("$@" 2>&1); then pass "$_desc"; else
        fail "$_desc" "exit $?: $(echo "$_out" | tail -n 1)"
        return 1
    fi
}

# check_fails DESC CMD...: run CMD, pass if it fails; returns 1 otherwise.
check_fails() {
    _desc=$1; shift
    if _out=$("$@" 2>&1); then fail "$_desc" "succeeded but should have failed"; return 1
    else pass "$_desc"; fi
}

# dmesg_mark: later expect_dmesg calls only look at lines logged after this.
dmesg_mark() { _dmesg_mark=$(dmesg | wc -l); }

# dmesg_since_mark: the dmesg lines logged since dmesg_mark.
dmesg_since_mark() { dmesg | tail -n +$((_dmesg_mark + 1)); }

# expect_dmesg DESC REGEX: pass if a line since the mark matches REGEX (ERE);
# the matching line is printed as a diagnostic.
expect_dmesg() {
    _line=$(dmesg_since_mark | grep -E -m1 -- "$2")
    if [ -n "$_line" ]; then diag "$_line"; pass "$1"
    else fail "$1" "no dmesg line matches /$2/"; fi
}

# expect_no_dmesg DESC REGEX: pass if no dmesg line since the mark matches.
expect_no_dmesg() {
    _line=$(dmesg_since_mark | grep -E -m1 -- "$2")
    if [ -z "$_line" ]; then pass "$1"
    else fail "$1" "dmesg: $_line"; fi
}

# wait_dmesg DESC TIMEOUT_S REGEX: like expect_dmesg, for a line that may
# still be on its way (logged by another context after what the script saw).
wait_dmesg() {
    _d=$1; _t=$2; _re=$3
    _deadline=$(( $(cut -d. -f1 /proc/uptime) + _t * ${HOTUP_TIME_SCALE:-1} ))
    until _line=$(dmesg_since_mark | grep -E -m1 -- "$_re"); do
        if [ "$(cut -d. -f1 /proc/uptime)" -ge "$_deadline" ]; then
            fail "$_d" "no dmesg line matches /$_re/ within ${_t}s"; return 1
        fi
        sleep 0.05   # poll interval of a condition wait
    done
    diag "$_line"; pass "$_d"
}

# finish: print the plan and exit non-zero if anything failed.
finish() {
    _ktap_line "1..$_ktap_n"
    [ "$_ktap_failed" -eq 0 ]
    exit $?
}

# nvme_trace_count EVENT: how many times QEMU logged trace event EVENT (one
# of qemu.rs's NVME_TRACE_EVENTS) so far, over every NVMe controller of the
# guest (`# nvme: N`): QEMU's own witness of what the emulated hardware saw.
nvme_trace_count() {
    grep -cE "(^|[@:])$1( |\$)" "$HOTUP_OUT/nvme-trace.log"
}

# nvme_trace_is EVENT OP N: QEMU's count of EVENT compares as `test` OP
# (-eq, -gt, -ge...) against N; for wait_for, while an event is on its way.
nvme_trace_is() { test "$(nvme_trace_count "$1")" "$2" "$3"; }

# expect_nvme_trace DESC EVENT N: QEMU logged EVENT exactly N times so far.
expect_nvme_trace() {
    if nvme_trace_is "$2" -eq "$3"; then pass "$1"
    else fail "$1" "QEMU trace: $2 seen $(nvme_trace_count "$2") times, expected $3"; fi
}

# hotup helpers (device, control node, upgrades, fio jobs) live in hotup.sh.
. "$HOTUP_REPO/userspace-tests/guest/hotup.sh"

# wait_for DESC TIMEOUT_S CMD...: poll CMD (every 50 ms) until it succeeds.
wait_for() {
    _desc=$1; _t=$2; shift 2
    _deadline=$(( $(cut -d. -f1 /proc/uptime) + _t * ${HOTUP_TIME_SCALE:-1} ))
    until "$@" >/dev/null 2>&1; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$_deadline" ] || { fail "$_desc" "not within ${_t}s"; return 1; }
        sleep 0.05   # poll interval of a condition wait
    done
    pass "$_desc"
}


# fio_live_passed DESC: stop the live workload (hotup.sh fio_live) after its
# current pass; every pass must have written and verified the whole device
# with no I/O error and no verify failure (a lost write fails its pass).
fio_live_passed() {
    fio_live_stop
    _rc=$?
    check "$1: every fio pass verified (no I/O error, no lost or stale write)" test $_rc -eq 0
    grep -E 'verify|bad header|error|err=' "$HOTUP_OUT/fio-live.log" | head -n 5 | while read -r l; do diag "fio: $l"; done
    set -- "$1" $(fio_live_totals)
    diag "$1: $2 passes, $3 blocks written, $4 verified, $5 errors"
    check "$1: at least one whole pass ran" test "${2:-0}" -gt 0
    check "$1: verify reads happened (non-zero)" test "${4:-0}" -gt 0
    check "$1: no error in fio's JSON" test "${5:-1}" -eq 0
}

# blackout_summary LABEL: a diagnostic with the count, minimum, median and
# maximum blackout (ms) of the resume lines since the mark, for the note
# and the README (`# LABEL blackout: n=10 min=... median=... max=... ms`).
blackout_summary() {
    dmesg_since_mark | sed -n 's/.*hotup: resume .*blackout_ns=\([0-9]*\).*/\1/p' | sort -n |
        awk -v l="$1" '{ v[NR] = $1 / 1e6 } END {
            if (NR == 0) { print "# " l " blackout: no resume line"; exit }
            printf "# %s blackout: n=%d min=%.1f median=%.1f max=%.1f ms\n", l, NR, v[1], v[int((NR + 1) / 2)], v[NR] }' |
        while read -r _l; do _ktap_line "$_l"; done
}

# expect_upgrade_lines DESC: the park, detach, adopt and resume lines of one
# upgrade, logged since the last dmesg_mark.
expect_upgrade_lines() {
    expect_dmesg "$1: park logged" 'hotup: park gen=[0-9]+ child=hotup_child_v[0-9] version=[0-9]+ reason=detach inflight=[0-9]+'
    expect_dmesg "$1: detach logged" 'hotup: detach gen=[0-9]+ .* drained=[0-9]+ blob_bytes=[0-9]+ schema=[0-9]'
    expect_dmesg "$1: adopt logged" 'hotup: adopt gen=[0-9]+ child=hotup_child_v[0-9] version=[0-9]+ from=hotup_child_v[0-9] from_version=[0-9]+ blob_bytes=[0-9]+'
    expect_dmesg "$1: resume logged" 'hotup: resume gen=[0-9]+ .* parked=[0-9]+ drained=[0-9]+ blackout_ns=[0-9]+'
}

