# description: fault matrix, teardown and control: the parent cannot be removed while a child is loaded or the disk or control node is open; discard-stash starts a fresh device only with no child; control writes that are not understood fail with EINVAL
# timeout: 300
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=16

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check_fails "rmmod parent with a child loaded" rmmod hotup_parent
# One discard or write-zeroes request zeroes at most 1 MiB inside submit.
check "discard_max_hw_bytes is 1 MiB" test "$(cat /sys/block/hotupblk0/queue/discard_max_hw_bytes)" -eq 1048576
check "write_zeroes_max_bytes is 1 MiB" test "$(cat /sys/block/hotupblk0/queue/write_zeroes_max_bytes)" -eq 1048576
check "write a pattern" sh -c "yes hotup | head -c 1048576 | dd of=$DEV bs=64k oflag=direct 2>/dev/null"

# Control writes that are not understood: EINVAL, with the reason in errno.
einval() { [ "$(ctl_errno "$1")" = EINVAL ]; }
for cmd in "export-schema" "export-schema -1" "export-schema x" "bogus" "discard-stash now"; do
    check "control '$cmd' fails with EINVAL" einval "$cmd"
done
check "a 5000-byte control write fails with EINVAL" einval "$(head -c 5000 /dev/zero | tr '\0' 'x')"

# discard-stash: refused while a child is attached (EBUSY).
check "discard-stash with a child attached fails with EBUSY" test "$(ctl_errno discard-stash)" = EBUSY
check "rmmod child" rmmod hotup_child_v1

# The disk open pins the parent.
exec 3< $DEV
check_fails "rmmod parent with the disk open" rmmod hotup_parent
exec 3<&-
# The control node open pins the parent too.
exec 4< $CTL
check_fails "rmmod parent with the control node open" rmmod hotup_parent
exec 4<&-

dmesg_mark
check "discard-stash with no child" test "$(ctl_errno discard-stash)" = OK
expect_dmesg "discard-stash logged with what it freed" 'hotup: discard-stash blob_bytes=[1-9][0-9]* regions=1 region_bytes=16777216'
check "no region left" test "$(ctl regions)" -eq 0
check "load child v1: starts fresh" load_child 1
expect_dmesg "fresh attach" 'hotup: attach gen=[0-9]+ child=hotup_child_v1 version=1 abi=1\.[0-9]+ adopted=no'
check "the device reads zeroes" python3 -c 'import sys
d=open(sys.argv[1],"rb").read(1<<20); sys.exit(0 if d.count(0)==len(d) else 1)' $DEV
check "rmmod child" rmmod hotup_child_v1
check "rmmod parent once nothing holds it" rmmod hotup_parent
finish
