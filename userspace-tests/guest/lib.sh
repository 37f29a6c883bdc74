# Sourced by every guest scenario. KTAP reporting, dmesg expectations and
# module helpers. Results go to the console and to $HOTUP_OUT/ktap.txt, which
# the host parses; the host also checks the script's exit status and dmesg.
set -u
KTAP_FILE="${HOTUP_OUT:-/tmp}/ktap.txt"
MODULES="${HOTUP_MODULES:?HOTUP_MODULES is not set: run scenarios with cargo xtask}"
_ktap_n=0
_ktap_failed=0
_dmesg_mark=0

_ktap_line() { echo "$*"; echo "$*" >> "$KTAP_FILE"; }
_ktap_line "KTAP version 1"

# diag TEXT...: a KTAP diagnostic line.
diag() { _ktap_line "# $*"; }

# pass DESC / fail DESC REASON: record one result.
pass() { _ktap_n=$((_ktap_n + 1)); _ktap_line "ok $_ktap_n $1"; }
fail() {
    _ktap_n=$((_ktap_n + 1)); _ktap_failed=$((_ktap_failed + 1))
    _ktap_line "not ok $_ktap_n $1 # ${2:-failed}"
}

# check DESC CMD...: run CMD, pass if it exits 0, else fail with its output.
check() {
    _desc=$1; shift
    if _out=$("$@" 2>&1); then pass "$_desc"; else
        fail "$_desc" "exit $?: $(echo "$_out" | tail -n 1)"
    fi
}

# check_fails DESC CMD...: run CMD, pass if it fails.
check_fails() {
    _desc=$1; shift
    if _out=$("$@" 2>&1); then fail "$_desc" "succeeded but should have failed"
    else pass "$_desc"; fi
}

# dmesg_mark: later expect_dmesg calls only look at lines logged after this.
dmesg_mark() { _dmesg_mark=$(dmesg | wc -l); }

# dmesg_since_mark: the dmesg lines logged since dmesg_mark.
dmesg_since_mark() { dmesg | tail -n +$((_dmesg_mark + 1)); }

# expect_dmesg DESC REGEX: pass if a line since the mark matches REGEX (ERE);
# the matching line is printed as a diagnostic.
expect_dmesg() {
    _line=$(dmesg_since_mark | grep -E -m1 -- "$2")
    if [ -n "$_line" ]; then diag "$_line"; pass "$1"
    else fail "$1" "no dmesg line matches /$2/"; fi
}

# finish: print the plan and exit non-zero if anything failed.
finish() {
    _ktap_line "1..$_ktap_n"
    [ "$_ktap_failed" -eq 0 ]
    exit $?
}
