# description: fault matrix, storms: upgrades under an iodepth-128 read storm, an open/close storm of /dev/hotupblk0 and a discard, write-zeroes and flush loop, then two upgrades started at once; nothing fails, every fio pass verifies, the discarded range reads back zero
# timeout: 1500
. "$HOTUP_REPO/userspace-tests/guest/lib.sh"
MIB=32
DATA=24          # fio's passes own [0, 24 MiB); the discard loop owns the rest
STOP=/tmp/storm.stop

check "load parent" load_parent capacity_mib=$MIB
check "load child v1" load_child 1
check "prefill the data range with verify headers" fio_prefill $DATA
fio_live $DATA

# iodepth 128 reads over the data range (every tag of both queues busy).
( while [ ! -e $STOP ]; do
    fio --name=storm --ioengine=libaio --direct=1 --filename=$DEV --size=${DATA}M --rw=randread \
        --bs=4k --iodepth=128 --numjobs=2 --time_based --runtime=5 \
        --output-format=json --output=/tmp/storm.json > /dev/null 2>&1 || { echo fail > /tmp/storm.rc; exit 1; }
  done; echo ok > /tmp/storm.rc ) &
# Open and close the disk as fast as one process can; every 64th open is
# O_DIRECT and reads a block, which an upgrade may park.
python3 -c 'import os,sys,mmap
dev,stop=sys.argv[1],sys.argv[2]; n=0; buf=mmap.mmap(-1,4096)
try:
    while not os.path.exists(stop):
        if n%64==0:
            fd=os.open(dev,os.O_RDONLY|os.O_DIRECT); os.preadv(fd,[buf],(n//64)%1024*4096)
        else:
            fd=os.open(dev,os.O_RDONLY)
        os.close(fd); n+=1
    print("ok",n)
except OSError as e:
    print("fail after",n,e)' $DEV $STOP > /tmp/opens.rc &
# Discard, write-zeroes and a synced write (a flush) over the tail.
( n=0; off=$((DATA << 20)); len=$(((MIB - DATA) << 20)); while [ ! -e $STOP ]; do
    blkdiscard -o $off -l $len $DEV && blkdiscard -z -o $off -l $len $DEV &&
    dd if=/dev/urandom of=$DEV bs=4k count=4 seek=$((off / 4096)) oflag=direct conv=fsync 2>/dev/null ||
        { echo "fail after $n" > /tmp/discard.rc; exit 1; }
    n=$((n + 1))
  done; echo "ok $n" > /tmp/discard.rc ) &
check "I/O flows under the storms" wait_completions 2000

to=2; i=0
while [ $i -lt 4 ]; do
    i=$((i + 1))
    check "upgrade $i to v$to under the storms" upgrade_to $to
    check "upgrade $i: I/O flows again" wait_completions 1000
    to=$((3 - to))
done

# Two upgrades at once: one may find the other's work done or in progress
# and fail (module busy or gone); exactly one child must be active after.
upgrade_to 2 > /tmp/up-a.log 2>&1 & UA=$!
upgrade_to 1 > /tmp/up-b.log 2>&1 & UB=$!
wait $UA; ra=$?; wait $UB; rb=$?
diag "concurrent upgrades: to v2 exit $ra, to v1 exit $rb"
check "at least one of two concurrent upgrades succeeded" test $ra -eq 0 -o $rb -eq 0
if [ -z "$(current_child)" ]; then
    # Both unloaded and one load lost the race with the other's unload:
    # the device is parked with the state kept, as after any refused load.
    diag "no child after the race: loading v1 recovers"
    load_child 1
fi
# A load that found the other's child already active registered as its
# standby (both children can switch): a legitimate end of the race.
if [ "$(ctl standby)" != - ]; then
    diag "the race left $(ctl standby) as the standby of $(current_child)"
    check "the standby of the race unloads" rmmod "$(ctl standby)"
fi
check "exactly one child is active" test "$(grep -c '^hotup_child_v' /proc/modules)" -eq 1 -a "$(ctl state)" = active
check "I/O flows after the concurrent upgrades" wait_completions 1000

touch $STOP
fio_live_passed "storms"
wait
check "the iodepth-128 storm never failed" test "$(cat /tmp/storm.rc)" = ok
check "the open/close storm never failed" grep -q '^ok' /tmp/opens.rc
diag "open/close storm: $(cat /tmp/opens.rc)"
check "the discard/flush loop never failed" grep -q '^ok' /tmp/discard.rc
diag "discard/write-zeroes/flush loop: $(cat /tmp/discard.rc)"
check "a final write-zeroes of the tail" blkdiscard -z -o $((DATA << 20)) -l $(((MIB - DATA) << 20)) $DEV
check "the tail reads back as zeroes" python3 -c 'import sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])<<20); d=f.read(int(sys.argv[3])<<20)
sys.exit(0 if d and d.count(0)==len(d) else 1)' $DEV $DATA $((MIB - DATA))
check "read-back verifies the data range" fio_readback $DATA
check "no request failed" test "$(ctl failed)" -eq 0
check "rmmod child" rmmod "$(current_child)"
check "rmmod parent" rmmod hotup_parent
finish
