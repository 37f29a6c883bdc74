# description: fault matrix, barrier: the child lingers in submit after each completion is visible (inject_submit_delay_us), the window in which its module used to be freed under a CPU; upgrades under fio stay clean and every pass verifies
# timeout: 1200
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=4
DELAY_US=${HOTUP_BARRIER_DELAY_US:-20000}
UPGRADES=${HOTUP_BARRIER_UPGRADES:-3}

check "load parent" load_parent capacity_mib=$MIB ${HOTUP_PARENT_PARAMS:-}
check "load child v1 lingering ${DELAY_US} us in submit" load_child 1 inject_submit_delay_us=$DELAY_US
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress" wait_completions 200
to=2; i=0
while [ $i -lt $UPGRADES ]; do
    i=$((i + 1))
    dmesg_mark
    check "upgrade $i to v$to while CPUs linger in the old child" upgrade_to $to inject_submit_delay_us=$DELAY_US
    expect_dmesg "upgrade $i: resume logged" 'hotup: resume gen=[0-9]+ .* blackout_ns=[0-9]+'
    check "upgrade $i: I/O flows again" wait_completions 100
    to=$((3 - to))
done
fio_live_passed "barrier"
check "no request failed" test "$(ctl failed)" -eq 0
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
