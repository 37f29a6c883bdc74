# description: a known pattern over the whole device survives v1->v2->v1->v1; discard, write-zeroes and flush work
# timeout: 240
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64

check "load parent (${MIB} MiB)" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "pattern generated" dd if=/dev/urandom of=/tmp/pattern bs=1M count=$MIB status=none
want=$(sha256sum < /tmp/pattern | cut -d' ' -f1)
check "pattern written over the whole device (O_DIRECT, then flush)" \
    dd if=/tmp/pattern of=$DEV bs=1M oflag=direct conv=fsync status=none
readback() { dd if=$DEV bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }
got=$(readback)
if [ "$got" = "$want" ]; then pass "read back on v1 matches"; else fail "read back on v1 matches" "sha256 $got != $want"; fi

step=0
for to in 2 1 1; do
    step=$((step + 1))
    from=$(current_child)
    dmesg_mark
    check "upgrade $step: $from -> v$to" upgrade_to $to
    expect_upgrade_lines "upgrade $step"
    [ $step -eq 1 ] && expect_dmesg "v2 adopted by migrating v1's schema" \
        'hotup_child_v2: adopt version=2 from_version=1 schema=1 migrated=yes'
    got=$(readback)
    if [ "$got" = "$want" ]; then pass "upgrade $step: data identical on v$to"
    else fail "upgrade $step: data identical on v$to" "sha256 $got != $want"; fi
done
dmesg_mark
check "upgrade 4: v1 -> v2 again" upgrade_to 2
check "downgrade export: v2 writes schema 1 for v1" upgrade_to 1
expect_dmesg "v2 exported schema 1 for the downgrade" 'hotup_child_v2: export version=2 schema=1 '
expect_dmesg "v1 adopted the downgraded state" 'hotup_child_v1: adopt version=1 from_version=2 schema=1 migrated=no'

# Discard and write-zeroes read back as zeroes, also after an upgrade.
check "discard 1 MiB at 8 MiB" blkdiscard -o $((8 << 20)) -l $((1 << 20)) $DEV
check "write-zeroes 1 MiB at 16 MiB" blkdiscard -z -o $((16 << 20)) -l $((1 << 20)) $DEV
zeroes=$(head -c $((1 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)
region() { dd if=$DEV bs=1M skip=$1 count=1 iflag=direct status=none | sha256sum | cut -d' ' -f1; }
check "discarded range reads zeroes" test "$(region 8)" = "$zeroes"
check "zeroed range reads zeroes" test "$(region 16)" = "$zeroes"
check "upgrade after discard" upgrade_to 2
check "discarded range still zeroes on v2" test "$(region 8)" = "$zeroes"
check "rest of the pattern intact on v2" test "$(region 0)" = "$(dd if=/tmp/pattern bs=1M count=1 status=none | sha256sum | cut -d' ' -f1)"

# One logical block size for the disk and the namespace (4096, Identify's
# one LBA format): a 512-byte direct read is refused, LBA n is block n.
check "the disk's logical block size is 4096" test "$(blockdev --getss $DEV)" = 4096
check_fails "a 512-byte direct read is refused" dd if=$DEV of=/dev/null bs=512 count=1 iflag=direct status=none

# FUA reaches the child: O_DIRECT|O_DSYNC writes are FUA writes (the disk
# advertises FUA), which the child counts and its export line reports.
check "8 FUA writes (O_DIRECT|O_DSYNC)" dd if=/tmp/pattern of=$DEV bs=4096 count=8 oflag=direct,dsync status=none
dmesg_mark
check "upgrade after FUA writes" upgrade_to 1
fua=$(dmesg_since_mark | sed -n 's/.*hotup_child_v2: export .* fua_writes=\([0-9]*\).*/\1/p' | tail -1)
if [ "${fua:-0}" -ge 8 ]; then pass "the child saw the writes as FUA (fua_writes=$fua)"
else fail "the child saw the writes as FUA" "export line fua_writes=${fua:-missing}, want >= 8"; fi

check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
