# description: fio with lost-write detection runs while children are switched 10 times in standby mode with in-flight handover (v1->v2->v1...); nothing fails, everything verifies, no drain
# timeout: 900
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64
SWITCHES=10
# 2 ms of device latency, so requests are still in flight when the old
# child freezes (at 100 us they all complete during the freeze itself).
LAT=latency_us=2000

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1 $LAT
check "prefill the device with verify headers" fio_prefill $MIB
fio_live $MIB
check "fio makes progress before the first switch" wait_completions 2000

to=2
i=0
while [ $i -lt $SWITCHES ]; do
    i=$((i + 1))
    from=$(current_child)
    dmesg_mark
    check "switch $i: fio is writing" wait_writes 200 || break
    check "switch $i: $from -> v$to (standby, handover) under load" standby_to $to $LAT
    expect_dmesg "switch $i: the new child registered as standby" "hotup: standby child=hotup_child_v$to version=$to .* handover=yes"
    expect_dmesg "switch $i: switch logged with its mode" "hotup: switch gen=[0-9]+ from=$from .* to=hotup_child_v$to .* mode=handover"
    expect_dmesg "switch $i: resume: no drain, handover" "hotup: resume gen=[0-9]+ child=hotup_child_v$to .* drained=0 .* load_ns=0 .* mode=standby-handover handed_over=[0-9]+"
    expect_dmesg "switch $i: the old child retired" "hotup: retire child=$from"
    check "switch $i: v$to is the active child" test "$(current_child)" = "hotup_child_v$to"
    diag "$(dmesg_since_mark | grep -E 'hotup: resume' | sed 's/^\[[^]]*\] //')"
    check "switch $i: fio still running" kill -0 $FIO || break
    check "switch $i: I/O flows again" wait_completions 2000
    to=$((3 - to))
done

fio_live_passed "live-standby"
check "read-back pass verifies the whole device" fio_readback $MIB

dmesg | grep -E 'hotup: resume .*mode=standby' > /tmp/resumes
check "every standby switch: drained=0" sh -c '! grep -vE " drained=0 " /tmp/resumes'
check "some switch handed requests over (handed_over > 0)" grep -qE 'handed_over=[1-9]' /tmp/resumes
check "some switch parked I/O (parked > 0)" grep -qE 'parked=[1-9]' /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done < /tmp/resumes
check "the parent counted every switch" test "$(ctl switches)" -eq $SWITCHES -a "$(ctl rollbacks)" -eq 0
check "no request failed" test "$(ctl failed)" -eq 0
check "one retired child is still loaded" test "$(ctl retired)" -eq 1

# A retired child leaves at leisure; then the active one, then the parent.
retired=hotup_child_v$to
check "rmmod the retired child" rmmod $retired
expect_dmesg "its unload is logged as a retired child's" "hotup: retired-gone child=$retired"
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
