# hotup's classic upgrade as one process (x86_64 Linux; perl-base only):
#
#   perl upgrade.pl [--report] CTL KO SCHEMA [PARAM=VALUE...]
#
# Tells the parent (control node CTL) which device-state schema KO reads,
# then unloads the loaded hotup child (it drains and exports) and loads KO
# (it adopts) with delete_module and finit_module back to back. The program
# is running and KO is open before the old child goes, so the time with no
# child loaded holds only the kernel's unload and load. With no child
# loaded (the device is parked after a refused adopt) it only loads KO.
#
# Errors go to stderr as rmmod/insmod would print them; the exit status is
# 0 or the failing call's errno. With --report, stdout gets what
# `cargo xtask upgrade-child` parses: `FROM <module>`, `AT <ms since the
# epoch>` just before the switch, `OUT <error>`, `RC <status>`, then the
# kernel log lines logged meanwhile, as `[seconds] text` like dmesg.
#
# Other perl programs (the soak's driver) `require` this file and call
# `hotup_upgrade::swap` in a loop, so one process does every upgrade.
package hotup_upgrade;
use strict;
use warnings;
use Fcntl qw(O_RDONLY O_NONBLOCK SEEK_END);

# x86_64 syscall numbers.
my ($SYS_clock_gettime, $SYS_delete_module, $SYS_finit_module) = (228, 176, 313);

sub now_ms {
    my $ts = "\0" x 16;
    syscall($SYS_clock_gettime, 0, $ts) == 0 or return 0;    # CLOCK_REALTIME
    my ($s, $ns) = unpack('q2', $ts);
    return $s * 1000 + int($ns / 1_000_000);
}

# The active hotup child's module name, or '': the parent's status line
# (a standby or retired child may be loaded too), else /proc/modules.
sub current_child {
    if (open(my $c, '<', '/dev/hotup-ctl')) {
        my $line = <$c> // '';
        return $line =~ /(?:^|\s)child=(\S+)/ && $1 ne '-' ? $1 : '';
    }
    open(my $m, '<', '/proc/modules') or return '';
    while (<$m>) { return $1 if /^(hotup_child_v\d+) / }
    return '';
}

# swap(CTL, KO, SCHEMA, PARAMS[, FROM]): the classic upgrade from the loaded
# child (FROM, read from /proc/modules when not given) to KO. Returns
# (0, '') or (errno, message).
sub swap {
    my ($ctl, $ko, $schema, $params, $from) = @_;
    $from //= current_child();
    my $c;
    open($c, '>', $ctl) or return (($! + 0) || 1, "cannot open $ctl: $!");
    syswrite($c, "export-schema $schema\n")
        or return (($! + 0) || 1, "cannot set the export schema on $ctl: $!");
    close($c);
    open(my $f, '<', $ko) or return (($! + 0) || 1, "insmod: ERROR: could not open $ko: $!");
    # delete_module(name, O_NONBLOCK) as rmmod does, then finit_module(fd,
    # params, 0) as insmod does.
    if ($from ne '' && syscall($SYS_delete_module, $from, O_NONBLOCK) != 0) {
        return (($! + 0) || 1, "rmmod: ERROR: could not remove module $from: $!");
    }
    if (syscall($SYS_finit_module, fileno($f), $params, 0) != 0) {
        return (($! + 0) || 1, "insmod: ERROR: could not insert module $ko: $!");
    }
    return (0, '');
}

# The command-line program.
sub main {
    my $report = @ARGV && $ARGV[0] eq '--report' ? shift @ARGV : '';
    @ARGV >= 3 or die "usage: upgrade.pl [--report] CTL KO SCHEMA [PARAM=VALUE...]\n";
    my ($ctl, $ko, $schema, @params) = @ARGV;
    my $from = current_child();

    # The kernel log from here on; a reader opened and moved to the end sees
    # only what is logged after.
    my $kmsg;
    if ($report && sysopen($kmsg, '/dev/kmsg', O_RDONLY | O_NONBLOCK)) {
        sysseek($kmsg, 0, SEEK_END);
    }

    print "FROM $from\nAT " . now_ms() . "\n" if $report;
    my ($rc, $err) = swap($ctl, $ko, $schema, join(' ', @params), $from);

    if ($report) {
        print "OUT $err\n" if $err ne '';
        print "RC $rc\n";
        if ($kmsg) {
            # Records are `prio,seq,usec,flags;text` (continuation lines start
            # with a space); read until EAGAIN.
            while (defined(my $n = sysread($kmsg, my $rec, 8192))) {
                last if $n == 0;
                my ($head, $text) = split(/;/, $rec, 2);
                next unless defined $text;
                my (undef, undef, $usec) = split(/,/, $head);
                $text =~ s/\n.*//s;
                printf("[%5d.%06d] %s\n", $usec / 1_000_000, $usec % 1_000_000, $text);
            }
        }
    }
    print STDERR "$err\n" if $err ne '';
    exit($rc > 255 ? 1 : $rc);
}

main() unless caller;
1;
