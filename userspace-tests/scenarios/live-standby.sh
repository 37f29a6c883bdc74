# description: fio with lost-write detection runs while children are switched 14 times in standby mode with in-flight handover (v1->v2->v1...), 2 of them freezing a child with a completion under way; nothing fails, everything verifies, no drain
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

# A completion under way at the freeze: a child whose worker holds each
# completion for 20 ms between taking it off its list and completing it
# (inject_complete_delay_us) is always in that window under load, so the
# switch away from it freezes it with one under way. That request is
# neither handed over nor waited for inside the blackout: the old child
# ends it itself, and its `finish` waits for it before it retires. Twice:
# a switch to the slow-completing child, then one away from it.
SLOW=inject_complete_delay_us=20000
j=0
while [ $j -lt 2 ]; do
    j=$((j + 1))
    i=$((i + 1))
    check "switch $i: to v$to, which completes slowly" standby_to $to $LAT $SLOW || break
    check "switch $i: I/O flows" wait_completions 50
    to=$((3 - to))
    i=$((i + 1))
    from=$(current_child)
    dmesg_mark
    check "switch $i: away from the slow-completing $from, under load" standby_to $to $LAT || break
    expect_dmesg "switch $i: resume: handover, completing= logged" "hotup: resume gen=[0-9]+ child=hotup_child_v$to .* drained=0 .* mode=standby-handover handed_over=[0-9]+ completing=[0-9]+"
    expect_dmesg "switch $i: the old child retired" "hotup: retire child=$from"
    diag "$(dmesg_since_mark | grep -E ': freeze |hotup: resume|: retired ' | sed 's/^\[[^]]*\] //')"
    check "switch $i: I/O flows again" wait_completions 500
    to=$((3 - to))
done
dmesg | grep -E 'hotup: resume .*mode=standby-handover' > /tmp/resumes
check "a switch froze a child with a completion under way (completing > 0)" grep -qE ' completing=[1-9]' /tmp/resumes
# The child's own count at its freeze (the resume line's is read later, a
# lower bound): at least one of the two slow children froze mid-completion.
check "a slow child logged its freeze with a completion under way" \
    sh -c "dmesg | grep -qE 'hotup_child_v[0-9]: freeze version=[0-9]+ held=[0-9]+ completing=[1-9]'"
# A request completed twice (or a stale cookie) is refused by the parent and
# logged as an error: there must be none.
check "no completion was refused (no 'hotup: error' line)" sh -c '! dmesg | grep -E "hotup: error"'

fio_live_passed "live-standby"
check "read-back pass verifies the whole device" fio_readback $MIB

dmesg | grep -E 'hotup: resume .*mode=standby' > /tmp/resumes
check "every standby switch: drained=0" sh -c '! grep -vE " drained=0 " /tmp/resumes'
check "some switch handed requests over (handed_over > 0)" grep -qE 'handed_over=[1-9]' /tmp/resumes
check "some switch parked I/O (parked > 0)" grep -qE 'parked=[1-9]' /tmp/resumes
while read -r l; do diag "$(echo "$l" | sed 's/^\[[^]]*\] //')"; done < /tmp/resumes
check "the parent counted every switch ($i)" test "$(ctl switches)" -eq $i -a "$(ctl rollbacks)" -eq 0
check "no request failed" test "$(ctl failed)" -eq 0
check "one retired child is still loaded" test "$(ctl retired)" -eq 1

# A retired child leaves at leisure; then the active one, then the parent.
retired=hotup_child_v$to
check "rmmod the retired child" rmmod $retired
expect_dmesg "its unload is logged as a retired child's" "hotup: retired-gone child=$retired"
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
