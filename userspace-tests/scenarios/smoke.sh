# description: load the parent and a child, check their dmesg lines, unload both cleanly
# timeout: 120
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"

# Scenarios run under /bin/sh (dash); guest scripts that use bash's process
# substitution need init's /dev/fd.
check "/dev/fd: bash process substitution works" bash -c 'read -r x < <(echo ok) && test "$x" = ok'
dmesg_mark
check "insmod hotup_parent" insmod "$MODULES/hotup_parent.ko"
expect_dmesg "parent logs its load" '\] hotup: load( |$)'
check "sysfs: parked with no child" test "$(sysfs state) $(sysfs child) $(sysfs generation)" = "parked - 0"
check "insmod hotup_child_v1" insmod "$MODULES/hotup_child_v1.ko"
expect_dmesg "child logs its load" 'hotup_child_v1: load version=1'
check "sysfs: active on v1, generation 1" test "$(sysfs state) $(sysfs child) $(sysfs child_version) $(sysfs generation)" = "active hotup_child_v1 1 1"
check "sysfs status line is the control node's (no I/O, so equal)" test "$(sysfs status)" = "$(cat $CTL)"
check "sysfs attributes are read-only" sh -c "! echo 1 > /sys/block/hotupblk0/hotup/state"
check "rmmod hotup_child_v1" rmmod hotup_child_v1
expect_dmesg "child logs its unload" 'hotup_child_v1: unload version=1'
check "rmmod hotup_parent" rmmod hotup_parent
expect_dmesg "parent logs its unload" '\] hotup: unload( |$)'
check "no module left loaded" sh -c '! grep -q hotup /proc/modules'
finish
