#!/bin/sh
# Runs C test programs one after the other and sums their closing lines.
#   run-tests.sh OUTDIR TMPDIR NAME...
# Each program must end with a line "N passed, M failed" and exit 0. A program that crashes,
# times out or prints no such line counts as one failure. The last line printed here is the
# total, in the same form.
#
# A trap is the safety net behind the tests' own cleanup (which a sanitizer abort or SIGKILL
# skips): on any exit it detaches loop devices whose backing file is under TMPDIR and unmounts
# file systems mounted under it, then removes work directories left behind.
set -u
out=$1; tmp=$2; shift 2
mkdir -p "$tmp"
tmp=$(cd "$tmp" && pwd)
timeout_s=${CT_TIMEOUT:-600}

sweep() {
    if [ "$(id -u)" = 0 ]; then
        losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
            case "$back" in "$tmp"/*) losetup -d "$dev" 2>/dev/null && echo "   (swept loop device $dev)";; esac
        done
        awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
            echo "   (swept mount $m)"
        done
    fi
    if [ -z "${DCACHE_TEST_KEEP:-}" ]; then
        rm -rf "$tmp"/dctest-* 2>/dev/null
    fi
}
trap sweep EXIT
trap 'exit 130' INT TERM HUP

total_pass=0; total_fail=0; bad=""
for name in "$@"; do
    bin="$out/$name"
    log="$out/$name.log"
    echo "==> $name"
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin was not built"
        total_fail=$((total_fail + 1)); bad="$bad $name"; continue
    fi
    start=$(date +%s)
    timeout -s TERM -k 10 "$timeout_s" "$bin" > "$log" 2>&1
    rc=$?
    cat "$log"
    end=$(date +%s)
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$last" ]; then
        p=${last%% passed*}; f=${last#*passed, }; f=${f%% failed*}
    else
        p=0; f=0
    fi
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then
        case $rc in
            124) echo "FAIL: $name timed out after ${timeout_s}s" ;;
            *) echo "FAIL: $name exited with status $rc" ;;
        esac
        f=1
    fi
    if [ -z "$last" ] && [ $rc -eq 0 ]; then
        echo "FAIL: $name printed no 'N passed, M failed' line"
        f=1
    fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    [ "$f" = 0 ] || bad="$bad $name"
    echo "    ($name: $((end - start)) s)"
done
echo "==> C tests: $# programs;${bad:+ failing:$bad}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
