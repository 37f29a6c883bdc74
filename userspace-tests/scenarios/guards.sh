# description: parent pinned while a child is loaded; second child EBUSY without standby support, a standby with it; switch without standby ENOENT; unprivileged control EPERM; park_timeout_ms fails parked I/O with EIO
# timeout: 200
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"

check "load parent" load_parent capacity_mib=16
check "load child v1" load_child 1

dmesg_mark
out=$(rmmod hotup_parent 2>&1); rc=$?
if [ $rc -ne 0 ]; then pass "rmmod parent with a child loaded fails"; diag "$out"
else fail "rmmod parent with a child loaded fails" "it succeeded"; fi
check "rmmod error names the child holding it" sh -c "echo '$out' | grep -q 'in use by: hotup_child_v1'"

# A second child that cannot be a standby (standby=0: an ABI 1.0 child
# behaves the same) is refused while one is active.
out=$(insmod "$MODULES/hotup_child_v2.ko" standby=0 2>&1); rc=$?
if [ $rc -ne 0 ]; then pass "second child without standby support refused while one is active"; diag "$out"
else fail "second child without standby support refused while one is active" "insmod succeeded"; fi
check "refused with EBUSY" sh -c "echo '$out' | grep -q 'Device or resource busy'"
expect_dmesg "refusal names the busy active child (hotupctl says to unload it first)" 'hotup: refuse child=hotup_child_v2 version=2 reason=busy active=hotup_child_v1 standby_capable=no$'
check "first child still active" test "$(ctl state) $(ctl child)" = "active hotup_child_v1"

# One that can registers as the standby: loaded, no I/O, shown by status.
dmesg_mark
check "a standby-capable second child loads as the standby" load_child 2
expect_dmesg "standby logged" 'hotup: standby child=hotup_child_v2 version=2 abi=1\.[0-9]+ active=hotup_child_v1 active_version=1 handover=yes'
check "status shows it" test "$(ctl child) $(ctl standby) $(ctl standby_version)" = "hotup_child_v1 hotup_child_v2 2"
check "rmmod of the standby works" rmmod hotup_child_v2
expect_dmesg "standby unload logged" 'hotup: standby-gone child=hotup_child_v2 version=2'
check "switch with no standby: ENOENT" test "$(ctl_errno switch)" = ENOENT
check "first child still active" test "$(ctl state) $(ctl child) $(ctl standby)" = "active hotup_child_v1 -"

# Control operations need CAP_SYS_ADMIN; the node is opened up so that the
# check the driver does is what is tested, not the file mode.
chmod 0666 $CTL
# (dd, not the shell's echo: dash reports every write error as "I/O error")
out=$(echo 'export-schema 1' | setpriv --reuid=65534 --regid=65534 --clear-groups dd of=$CTL status=none 2>&1); rc=$?
if [ $rc -ne 0 ]; then pass "unprivileged control write fails"; diag "$out"
else fail "unprivileged control write fails" "it succeeded"; fi
check "with EPERM" sh -c "echo '$out' | grep -q 'Operation not permitted'"
out=$(echo switch | setpriv --reuid=65534 --regid=65534 --clear-groups dd of=$CTL status=none 2>&1)
check "an unprivileged switch fails with EPERM" sh -c "echo '$out' | grep -q 'Operation not permitted'"
check "unprivileged status read works" setpriv --reuid=65534 --regid=65534 --clear-groups cat $CTL
check "export schema unchanged" test "$(ctl export_schema)" = 0
check "root control write works" sh -c "echo 'export-schema 1' > $CTL"
check "export schema set" test "$(ctl export_schema)" = 1
check_fails "unknown control command rejected" sh -c "echo 'frobnicate' > $CTL"

dmesg_mark
check "rmmod child" rmmod hotup_child_v1
expect_dmesg "the detach asked for the schema set" 'hotup: detach gen=1 child=hotup_child_v1 .* schema=1 blob=ok'
check "the setting lasts one detach only" test "$(ctl export_schema)" = 0
check "rmmod parent once no child is loaded" rmmod hotup_parent

# Park timeout: no child, parked I/O fails with EIO after ~2 s, logged.
dmesg_mark
check "load parent with park_timeout_ms=2000" load_parent capacity_mib=16 park_timeout_ms=2000
t0=$(cut -d' ' -f1 /proc/uptime)
out=$(dd if=$DEV of=/dev/null bs=4k count=1 iflag=direct 2>&1); rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
ms=$(echo "$t0 $t1" | awk '{printf "%d", ($2 - $1) * 1000}')
diag "read with no child took ${ms} ms: $(echo "$out" | head -n 1)"
check "parked read failed" test $rc -ne 0
check "with EIO" sh -c "echo '$out' | grep -q 'Input/output error'"
check "not before 2 s as seen from user space" test "$ms" -ge 1800
expect_dmesg "park timeout logged" 'hotup: park-timeout failed=1 timeout_ms=2000 waited_ms=[0-9]+ status=EIO'
waited=$(dmesg_since_mark | sed -n 's/.*hotup: park-timeout .*waited_ms=\([0-9]*\).*/\1/p' | tail -n 1)
check "the request waited about 2 s in the kernel (2000..2500 ms)" test "$waited" -ge 2000 -a "$waited" -le 2500
check "rmmod parent" rmmod hotup_parent
finish
