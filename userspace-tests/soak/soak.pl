# The soak's upgrade loop (run by soak.sh once fio is running), in one
# process so an upgrade costs what the kernel costs: under TCG every process
# start in the guest costs about a second, which a shell loop paid several
# times per upgrade.
#
#   perl soak.pl CTL DEV MODULES N FIO_PID TIME_SCALE [PARAM=VALUE...]
#
# N classic upgrades v1->v2->v1... (the device-state schema follows the
# version); every 10th by the rmmod and insmod commands, the others by
# upgrade.pl's swap. After each it waits for 200 more completed requests
# (the parent's `completed`), so the next upgrade meets I/O in flight. An
# upgrade is "under writes" when the disk completed writes from just before
# it started to just after it ended (fio's passes alternate a write phase and
# a verify phase). PARAM=VALUE go to every new child (fault injection).
#
# Prints `soak: I/N vTO MODE blackout_ns=B upgrade_ms=U wait_ms=W` per
# upgrade, then `soak: done upgrades=I under_writes=K`; on a failure
# `soak: failed upgrade I: WHY` and exit 1.
use strict;
use warnings;
use Fcntl qw(O_RDONLY O_NONBLOCK SEEK_END);

my ($here) = $0 =~ m{^(.*)/} or die "run soak.pl by its path\n";
require "$here/../guest/upgrade.pl";

@ARGV >= 6 or die "usage: soak.pl CTL DEV MODULES N FIO_PID TIME_SCALE [PARAM=VALUE...]\n";
my ($ctl, $dev, $modules, $n, $fio, $scale, @params) = @ARGV;
(my $disk = $dev) =~ s{^/dev/}{};
$| = 1;

sub slurp {
    open(my $f, '<', $_[0]) or return '';
    local $/;
    return <$f> // '';
}

# Completed writes of the disk (field 5 of /sys/block/DISK/stat).
sub writes { (split(' ', slurp("/sys/block/$disk/stat")))[4] // 0 }

# One field of the parent's status line.
sub ctl_field {
    my $v = slurp($ctl) =~ /(?:^|\s)\Q$_[0]\E=(\d+)/ ? $1 : undef;
    return $v;
}

sub uptime_ms { my ($s) = split(' ', slurp('/proc/uptime')); return int(($s // 0) * 1000) }

sub failed {
    print "soak: failed upgrade $_[0]: $_[1]\n";
    exit 1;
}

# The kernel log from here on: the `hotup: resume` line of each upgrade.
sysopen(my $kmsg, '/dev/kmsg', O_RDONLY | O_NONBLOCK) or die "cannot open /dev/kmsg: $!\n";
sysseek($kmsg, 0, SEEK_END);
sub last_blackout {
    my $b;
    while (defined(my $got = sysread($kmsg, my $rec, 8192))) {
        last if $got == 0;
        $b = $1 if $rec =~ /hotup: resume .*?(blackout_ns=\d+)/;
    }
    return $b;
}

my ($to, $under, $params) = (2, 0, join(' ', @params));
for my $i (1 .. $n) {
    my $mode = $i % 10 == 0 ? 'commands' : 'one-process';
    kill(0, $fio) or failed($i, 'the fio writer stopped (a failed pass?): see fio-live.log');
    my $ko = "$modules/hotup_child_v$to.ko";
    my ($w0, $t0) = (writes(), uptime_ms());
    if ($mode eq 'commands') {
        my $from = hotup_upgrade::current_child();
        open(my $c, '>', $ctl) or failed($i, "cannot open $ctl: $!");
        syswrite($c, "export-schema $to\n") or failed($i, "export-schema $to: $!");
        close($c);
        system('rmmod', $from) == 0 or failed($i, "rmmod $from failed");
        system('insmod', $ko, @params) == 0 or failed($i, "insmod $ko failed");
    } else {
        my ($rc, $err) = hotup_upgrade::swap($ctl, $ko, $to, $params);
        $rc == 0 or failed($i, "v$to ($mode): $err");
    }
    my $t1 = uptime_ms();
    $under++ if writes() > $w0;
    my $want = (ctl_field('completed') // 0) + 200;
    my $deadline = $t1 + 120_000 * $scale;
    while ((ctl_field('completed') // 0) < $want) {
        uptime_ms() < $deadline or failed($i, 'fewer than 200 requests completed in 120 s after it');
        select(undef, undef, undef, 0.01);    # poll interval of a condition wait
    }
    my $t2 = uptime_ms();
    my $b = last_blackout() // 'blackout_ns=?';
    printf("soak: %d/%d v%d %s %s upgrade_ms=%d wait_ms=%d\n", $i, $n, $to, $mode, $b, $t1 - $t0, $t2 - $t1);
    $to = 3 - $to;
}
print "soak: done upgrades=$n under_writes=$under\n";
exit 0;
