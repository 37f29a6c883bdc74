# description: fault matrix, park timeout: every parked request has its own deadline (park_timeout_ms after it parked), re-based across attach and detach; a request parked later is not failed early
# timeout: 300
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
# Long enough that starting a process under TCG (~1 s; 5-10 s on the debug
# kernel, hence the scale) does not blur the schedule below.
SCALE=${HOTUP_TIME_SCALE:-1}
T=$((8000 * SCALE))

# read1 NAME: one direct 4 KiB read of the device; records its status and
# how long it took (ms) in /tmp/NAME.rc and /tmp/NAME.ms.
read1() {
    _t0=$(date +%s%3N)
    dd if=$DEV of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/$1.err
    echo $? > /tmp/$1.rc
    echo $(( $(date +%s%3N) - _t0 )) > /tmp/$1.ms
}
parked_is() { [ "$(ctl parked)" -eq "$1" ]; }

check "load parent with park_timeout_ms=$T (no child)" load_parent capacity_mib=16 park_timeout_ms=$T
read1 a & A=$!
wait_for "request a parks" 10 parked_is 1
# The schedule under test: b parks a few seconds after a.
sleep $((3 * SCALE))
read1 b & B=$!
wait_for "request b parks" 10 parked_is 2
dmesg_mark
wait $A
check "a failed with EIO" test "$(cat /tmp/a.rc)" -ne 0
diag "a: $(cat /tmp/a.err | tail -n 1), after $(cat /tmp/a.ms) ms"
check "a waited its whole timeout" test "$(cat /tmp/a.ms)" -ge $((T - 100))
check "b, parked later, is still waiting when a fails" kill -0 $B
check "one request still parked" parked_is 1
wait_dmesg "park-timeout logged for a alone" 10 "hotup: park-timeout failed=1 timeout_ms=$T waited_ms=[0-9]+ status=EIO"
w=$(dmesg_since_mark | sed -n 's/.*hotup: park-timeout failed=1 .*waited_ms=\([0-9]*\).*/\1/p' | head -n 1)
check "the logged wait ($w ms) is at least the timeout" test "${w:-0}" -ge $T
wait $B
check "b failed with EIO" test "$(cat /tmp/b.rc)" -ne 0
check "b waited its whole timeout too" test "$(cat /tmp/b.ms)" -ge $((T - 100))

# Re-based across attach and detach: a request parked after a detach gets
# a full timeout, whatever was parked (and released) before.
read1 c & C=$!
wait_for "request c parks" 10 parked_is 1
check "load child v1: c is released" load_child 1
wait $C
check "c completed" test "$(cat /tmp/c.rc)" -eq 0
check "rmmod child: parked again" rmmod hotup_child_v1
read1 d & D=$!
wait_for "request d parks" 10 parked_is 1
wait $D
check "d failed with EIO" test "$(cat /tmp/d.rc)" -ne 0
diag "d: failed after $(cat /tmp/d.ms) ms"
check "d waited its whole timeout, not what was left of an older one" test "$(cat /tmp/d.ms)" -ge $((T - 100))
check "the parent counts 3 timeouts" test "$(ctl park_timeouts)" -eq 3
check "rmmod parent" rmmod hotup_parent
finish
