# description: fio with data verification runs while children are swapped 6 times (v1->v2->v1...); nothing fails, everything verifies
# timeout: 600
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
UPGRADES=6

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "prefill the device with verify headers" fio_prefill $MIB

# The live workload (hotup.sh fio_live): passes that each write every 4 KiB
# block once and verify seed, sequence number and CRC of every block (a
# lost write fails its pass), beside a random reader; it runs until
# fio_live_passed stops it, so every upgrade happens under load.
fio_live $MIB
check "fio makes progress before the first upgrade" wait_completions 2000

to=2
i=0
while [ $i -lt $UPGRADES ]; do
    i=$((i + 1))
    from=$(current_child)
    dmesg_mark
    # The last two as by hand (rmmod, then insmod: two programs), the others
    # through upgrade_ko's one-process swap; both must hold up under load.
    if [ $i -gt $((UPGRADES - 2)) ]; then export HOTUP_SWAP=commands; fi
    # Each upgrade happens while fio is writing (not in a pass's verify phase).
    check "upgrade $i: fio is writing" wait_writes 200 || break
    check "upgrade $i: $from -> v$to under load${HOTUP_SWAP:+ (rmmod + insmod)}" upgrade_to $to
    expect_upgrade_lines "upgrade $i"
    diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
    # A failed pass (a lost write) stops the writer: no point going on.
    check "upgrade $i: fio still running" kill -0 $FIO || break
    check "upgrade $i: I/O flows again" wait_completions 2000
    to=$((3 - to))
done

fio_live_passed "live"

check "read-back pass verifies the whole device" fio_readback $MIB
chunks=$(( $(fio_json "$HOTUP_OUT/fio-readback.json" readback read total_ios) * 16 ))
diag "read-back: $chunks 4 KiB chunks verified"
check "read-back covered every 4 KiB of the device" test "$chunks" -eq $((MIB * 256))

# Proof that real I/O was held and drained, not an idle device.
dmesg | grep -E 'hotup: resume' > /tmp/resumes
check "some upgrade parked I/O (parked > 0)" grep -qE 'parked=[1-9]' /tmp/resumes
check "some upgrade drained in-flight I/O (drained > 0)" grep -qE 'drained=[1-9]' /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done < /tmp/resumes

check "sysfs counts every upgrade" test "$(sysfs upgrades)" -eq $UPGRADES
check "sysfs: last blackout > 0 ns, no request failed" test "$(sysfs last_blackout_ns)" -gt 0 -a "$(sysfs failed)" -eq 0
check "sysfs and the control node agree" test "$(sysfs generation) $(sysfs last_blackout_ns)" = "$(ctl generation) $(ctl last_blackout_ns)"

check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
