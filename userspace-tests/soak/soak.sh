# The soak (`cargo xtask soak`): $HOTUP_SOAK_UPGRADES consecutive classic
# upgrades (v1->v2->v1...) under the lost-write-detecting fio workload,
# driven inside the guest so an upgrade costs what the kernel costs. Every
# 10th upgrade is rmmod + insmod, the others the one-process swap. Each
# upgrade waits for 200 completed requests after the previous one (reads or
# writes: fio's passes alternate a write phase and a verify phase, and
# waiting for writes only would make most of the soak's time the verify
# phase). An upgrade is "under writes" when the disk completed writes from
# just before it started to just after it ended; the count is reported
# ("soak: done ... under_writes=K") and must be a quarter of them at least
# (about half are, as the two phases take about as long).
# The loop is hotup-soak (userspace-tests/src/bin/hotup-soak.rs), one
# process; progress lines: "soak: N/TOTAL ...".
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
N=${HOTUP_SOAK_UPGRADES:?set by cargo xtask soak}
MIB=${HOTUP_SOAK_MIB:-64}

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 1000

# The loop's lines go to the console (the host shows them as progress) and
# to soak.log.
{
    "$MODULES/hotup-soak" --ctl "$CTL" --dev "$DEV" --modules "$MODULES" --upgrades "$N" \
        --fio-pid "$FIO" --time-scale "${HOTUP_TIME_SCALE:-1}" -- ${HOTUP_INJECT:-} 2>&1
    echo $? > "$HOTUP_OUT/soak.rc"
} | tee "$HOTUP_OUT/soak.log"
check "all $N upgrades done under load ($(sed -n 's/^soak: \(failed .*\)/\1/p' "$HOTUP_OUT/soak.log" | grep . || echo ok))" \
    test "$(cat "$HOTUP_OUT/soak.rc")" -eq 0
under=$(sed -n 's/^soak: done .*under_writes=\([0-9]*\).*/\1/p' "$HOTUP_OUT/soak.log")
check "upgrades under writes: ${under:-?} of $N (a quarter at least)" test "$((${under:-0} * 4))" -ge "$N"
fio_live_passed "soak"
check "read-back pass verifies the whole device" fio_readback $MIB
check "no request failed" test "$(ctl failed)" -eq 0
check "the parent counted every upgrade" test "$(ctl upgrades)" -eq $N
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
