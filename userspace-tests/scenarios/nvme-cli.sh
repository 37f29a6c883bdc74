# description: the stock nvme tool (nvme-cli) on the controller node /dev/hotup0 and the namespace: id-ctrl's firmware revision names the running child (v1, then v2, then v1), id-ns gives the size, smart-log counters never go back and count the I/O done between upgrades, features set before an upgrade read back after it, nvme write/read round-trip data across upgrades
# timeout: 600
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=64

check "load parent (${MIB} MiB)" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "the controller node is a character device" test -c $NVME_CTRL
check "id-ctrl: firmware revision v1 (the running child)" test "$(nvme_field fr id-ctrl $NVME_CTRL)" = v1
check "id-ctrl: one namespace" test "$(nvme_field nn id-ctrl $NVME_CTRL)" = 1
check "id-ns: nsze is the device size in 4 KiB blocks" \
    test "$(nvme_field nsze id-ns $DEV)" = $((MIB * 256))
check "id-ns through the controller node, namespace 1" \
    test "$(nvme_field nsze id-ns $NVME_CTRL -n 1)" = $((MIB * 256))
check "list-ns: namespace 1" sh -c "nvme list-ns $NVME_CTRL | grep -q '0x1'"

smart() { nvme_field "$1" smart-log $NVME_CTRL; }
check "smart-log: one power cycle" test "$(smart power_cycles)" = 1

check "set-feature temperature threshold 0x150" nvme set-feature $NVME_CTRL -f 4 -v 0x150
check "set-feature volatile write cache off" nvme set-feature $NVME_CTRL -f 6 -v 0
check "get-feature reads 0x150 back" test "$(nvme_feature 4)" = 336
check "get-feature reads VWC 0 back" test "$(nvme_feature 6)" = 0

check "data for nvme write" dd if=/dev/urandom of=/tmp/nvme-w bs=4096 count=4 status=none
check "nvme write: 4 blocks at LBA 100 on the namespace" \
    nvme write $DEV -s 100 -c 3 -z 16384 -d /tmp/nvme-w
check "nvme read: the same 4 blocks" nvme read $DEV -s 100 -c 3 -z 16384 -d /tmp/nvme-r
check "nvme read returns what nvme write wrote" cmp /tmp/nvme-w /tmp/nvme-r
check "the block device reads the same bytes at 400 KiB" \
    sh -c "dd if=$DEV bs=4096 skip=100 count=4 iflag=direct status=none | cmp - /tmp/nvme-w"

hr0=$(smart host_read_commands); hw0=$(smart host_write_commands)
dr0=$(smart data_units_read); dw0=$(smart data_units_written)
diag "before the I/O: host_read_commands=$hr0 host_write_commands=$hw0 data_units_read=$dr0 data_units_written=$dw0"
# 2000 writes and 2000 reads of 4 KiB (O_DIRECT: one request each).
check "2000 block writes" dd if=/dev/urandom of=$DEV bs=4096 count=2000 seek=1024 oflag=direct status=none
check "2000 block reads" dd if=$DEV of=/dev/null bs=4096 count=2000 skip=1024 iflag=direct status=none

for step in "standby 2" "classic 1" "standby 2"; do
    set -- $step; mode=$1; to=$2
    hr=$(smart host_read_commands); hw=$(smart host_write_commands)
    dr=$(smart data_units_read); dw=$(smart data_units_written)
    pc=$(smart power_cycles)
    dmesg_mark
    if [ $mode = standby ]; then check "$mode upgrade to v$to" standby_to $to
    else
        check "unload the retired child" unload_retired
        check "$mode upgrade to v$to" upgrade_to $to
    fi
    check "after $mode to v$to: id-ctrl says v$to" test "$(nvme_field fr id-ctrl $NVME_CTRL)" = v$to
    check "after $mode to v$to: host_read_commands kept ($hr)" test "$(smart host_read_commands)" -ge "$hr"
    check "after $mode to v$to: host_write_commands kept ($hw)" test "$(smart host_write_commands)" -ge "$hw"
    check "after $mode to v$to: data_units_read kept ($dr)" test "$(smart data_units_read)" -ge "$dr"
    check "after $mode to v$to: data_units_written kept ($dw)" test "$(smart data_units_written)" -ge "$dw"
    check "after $mode to v$to: no power cycle" test "$(smart power_cycles)" = "$pc"
    check "after $mode to v$to: temperature threshold still 0x150" test "$(nvme_feature 4)" = 336
    check "after $mode to v$to: volatile write cache still off" test "$(nvme_feature 6)" = 0
    check "after $mode to v$to: nvme read returns the nvme-written data" \
        sh -c "nvme read $DEV -s 100 -c 3 -z 16384 -d /tmp/nvme-r2 && cmp /tmp/nvme-w /tmp/nvme-r2"
    expect_dmesg "$mode to v$to: resume line counts syscalls" \
        "hotup: resume gen=[0-9]+ child=hotup_child_v$to .* parked_calls=[0-9]+ drained_calls=[0-9]+"
done
# Counters grew by at least the I/O done since the first reading.
hr1=$(smart host_read_commands); hw1=$(smart host_write_commands)
dr1=$(smart data_units_read); dw1=$(smart data_units_written)
diag "after 3 upgrades: host_read_commands=$hr1 host_write_commands=$hw1 data_units_read=$dr1 data_units_written=$dw1"
check "host_write_commands grew by the 2000 writes" test "$hw1" -ge $((hw0 + 2000))
check "host_read_commands grew by the 2000 reads and 3 nvme reads" test "$hr1" -ge $((hr0 + 2003))
# 2000 x 4 KiB = 8,192,000 bytes = 16 units of 1000 x 512 bytes.
check "data_units_written grew by 16 (8 MB written)" test "$dw1" -ge $((dw0 + 16))
check "data_units_read grew by 16 (8 MB read)" test "$dr1" -ge $((dr0 + 16))

check "rmmod the retired child" unload_retired
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
