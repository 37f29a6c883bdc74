# description: standby switches that fail roll back to the old child under fio (adopt error, failed export, unknown mandatory section, drain beyond switch_timeout_ms, the operator's abort), or are refused in their prepare step before anything freezes (trial export, the standby's probe); nothing fails, the next switch succeeds, everything verifies
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=32
# A child with 20 s of device latency cannot drain within 250 ms.
TIMEOUT_MS=$((250 * ${HOTUP_TIME_SCALE:-1}))

check "load parent" load_parent capacity_mib=$MIB switch_timeout_ms=$TIMEOUT_MS
check "load child v1" load_child 1
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

# v1_standby: load v1 (it registers as the standby) and have v2 export
# the schema v1 reads. v2_leaves: rmmod the active v2 the same way.
v1_standby() { load_child 1 && echo 'export-schema 1' > "$CTL"; }
v2_leaves() { echo 'export-schema 1' > "$CTL" && rmmod hotup_child_v2; }

# rolled_back DESC STEP: the last switch failed at STEP, the old child was
# resumed and is still active, and I/O flows.
rolled_back() {
    expect_dmesg "$1: rollback logged" "hotup: rollback child=.* step=$2 .*state=resumed active=$3"
    check "$1: $3 is still the active child" test "$(current_child)" = "$3"
    check "$1: I/O flows" wait_completions 500
}

# 1. The standby's adopt fails.
dmesg_mark
check "adopt error: standby v2 loaded" insmod "$MODULES/hotup_child_v2.ko" inject_adopt_error=1
check_fails "adopt error: the switch fails" sh -c "echo switch > $CTL"
rolled_back "adopt error" adopt hotup_child_v1
check "adopt error: the standby is still there, unadopted" test "$(ctl standby)" = hotup_child_v2
check "adopt error: rmmod the standby" rmmod hotup_child_v2
expect_dmesg "adopt error: standby unload logged" "hotup: standby-gone child=hotup_child_v2"

# 2. The next switch to a good standby succeeds; that v2 fails its own
#    exports later (inject_export_fault=1).
dmesg_mark
check "good switch: v1 -> v2" standby_to 2 inject_export_fault=1
check "good switch: v2 active" test "$(current_child)" = hotup_child_v2
check "good switch: I/O flows" wait_completions 500

# 3. The old child's export fails: it resumes with its own state.
dmesg_mark
check "failed export: rmmod the retired v1" rmmod hotup_child_v1
check "failed export: v1 loaded as standby (v2 asked for schema 1)" v1_standby
check_fails "failed export: the switch is refused in its prepare step" sh -c "echo switch > $CTL"
expect_dmesg "failed export: refused before anything froze" "hotup: refuse-switch reason=trial-export child=hotup_child_v2 .*state=active"
check "failed export: no rollback was needed" test "$(ctl rollbacks)" -eq 1
check_fails "failed export: without the prepare step, the switch fails" sh -c "echo 'switch noprepare' > $CTL"
rolled_back "failed export" export hotup_child_v2

# 4. The active child leaves (rmmod) while a standby waits: the standby is
#    promoted (the export failed: the last good state names the same data).
dmesg_mark
check "promotion: rmmod the active v2" v2_leaves
expect_dmesg "promotion: logged" "hotup: promote child=hotup_child_v1"
expect_dmesg "promotion: v1 took the last good state" "hotup: recover gen=[0-9]+ child=hotup_child_v1 .* using=last-good reason=export-failed"
check "promotion: v1 active" test "$(current_child)" = hotup_child_v1
check "promotion: I/O flows" wait_completions 500

# 5. A child that does not drain within switch_timeout_ms (20 s latency, no
#    handover): the switch is called off within the bound, the old child
#    resumes. (20 s, not less: the operator's abort below must arrive while
#    a switch still drains, i.e. within one latency of its start, on a slow
#    or loaded guest too.)
dmesg_mark
check "slow drain: v1 -> slow v2 (v2 cannot hand over: drained)" standby_to 2 handover=0 latency_us=20000000
expect_dmesg "slow drain: that switch drained" "hotup: resume gen=[0-9]+ child=hotup_child_v2 .* mode=standby-drain"
check "slow drain: I/O flows at v2's pace" wait_completions 20
dmesg_mark
check "slow drain: rmmod the retired v1" rmmod hotup_child_v1
check "slow drain: v1 loaded as standby (v2 asked for schema 1)" v1_standby
check_fails "slow drain: the switch is called off" sh -c "echo switch > $CTL"
expect_dmesg "slow drain: abort logged" "hotup: abort gen=[0-9]+ child=hotup_child_v2 .* reason=drain-timeout"
waited=$(dmesg_since_mark | sed -n 's/.*hotup: abort .*waited_ms=\([0-9]*\).*/\1/p' | head -n 1)
check "slow drain: called off within the bound ($waited ms; bound $TIMEOUT_MS ms, plus 100 ms of timer slack)" test "${waited:-99999}" -le $((TIMEOUT_MS + 100))
check "slow drain: v2 is still active" test "$(current_child)" = hotup_child_v2
check "slow drain: I/O flows" wait_completions 20

# The operator's abort, while a switch with a long bound drains the slow
# child (20 s): the switch fails with ECANCELED, the old child resumes.
dmesg_mark
ctl_errno 'switch timeout_ms=60000' > /tmp/switch.result &
SW=$!
wait_dmesg "operator abort: the switch is draining" 30 "hotup: switch gen=[0-9]+ from=hotup_child_v2 .* mode=drain .* timeout_ms=60000"
check "operator abort: abort is accepted" test "$(ctl_errno abort)" = OK
wait $SW
check "operator abort: the switch failed with ECANCELED" test "$(cat /tmp/switch.result)" = ECANCELED
expect_dmesg "operator abort: logged" "hotup: abort gen=[0-9]+ child=hotup_child_v2 .* reason=operator .*state=resumed"
check "operator abort: v2 is still active" test "$(current_child)" = hotup_child_v2
check "operator abort: I/O flows" wait_completions 20
check "abort with no switch running: ENOENT" test "$(ctl_errno abort)" = ENOENT

# 6. Leaving the slow child: rmmod drains it (classic) and promotes v1.
dmesg_mark
check "leaving: rmmod slow v2 promotes v1" v2_leaves
check "leaving: v1 active" test "$(current_child)" = hotup_child_v1
check "leaving: I/O flows" wait_completions 500

# 7. An unknown mandatory section in the old child's blob: the standby
#    refuses it. (v2 is switched to with the fault, then asked to hand over
#    to v1; it stays active to the end.)
dmesg_mark
check "unknown section: v1 -> v2" standby_to 2 inject_export_fault=3
check "unknown section: rmmod the retired v1" rmmod hotup_child_v1
check "unknown section: v1 loaded as standby (v2 asked for schema 1)" v1_standby
check_fails "unknown section: the switch is refused in its prepare step" sh -c "echo switch > $CTL"
expect_dmesg "unknown section: the standby's probe refused it" "hotup: refuse-switch reason=probe standby=hotup_child_v1 .*state=active"
check_fails "unknown section: without the prepare step, the switch fails" sh -c "echo 'switch noprepare' > $CTL"
rolled_back "unknown section" adopt hotup_child_v2

fio_live_passed "standby-rollback"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "rollbacks counted" test "$(ctl rollbacks)" -eq 3
check "rmmod the standby" rmmod hotup_child_v1
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
