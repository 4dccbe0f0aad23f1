#!/bin/sh
# tests/fuzz/campaign.sh -- runs every built fuzz target and prints a table.
#
#   tests/fuzz/campaign.sh [SECONDS [JOBS]]     a campaign: SECONDS per target
#                                               (default 60), JOBS targets at
#                                               once (default: every core)
#   tests/fuzz/campaign.sh --smoke [SECONDS]    make fuzz-smoke: each committed
#                                               corpus replayed, then SECONDS
#                                               (default 20) of fuzzing; fails on
#                                               the first crash
#
# Run from the repository root. It needs only what `make fuzz` built
# (objs/fuzz/fuzz_*, or FUZZ_BIN_DIR), the shared libraries they link
# (libev, libconfig, OpenSSL, nghttp2, ngtcp2, GnuTLS), tests/fuzz/ (corpus,
# dictionaries, lsan.supp) and a POSIX shell with awk and xargs: no compiler.
#
# New inputs go to FUZZ_WORK (default objs/fuzz/campaign/<target>/corpus),
# never into the committed corpus, which is read as a second corpus folder;
# crash, leak and timeout inputs to .../<target>/artifacts/. A campaign
# restarts a target that crashed for the rest of its time, so one bug does
# not end its run; the table counts the crashes. Seeds worth keeping are
# merged by hand: fuzz_<name> -merge=1 tests/fuzz/corpus/<name> <dir>.
set -u

bins=${FUZZ_BIN_DIR:-objs/fuzz}
work=${FUZZ_WORK:-objs/fuzz/campaign}

# one target (run by xargs below): $1 mode, $2 name, $3 seconds
one() {
    mode=$1 name=$2 secs=$3
    bin=$bins/fuzz_$name
    dir=$work/$name
    log=$dir/log
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    set -- -artifact_prefix="$dir/artifacts/" -print_final_stats=1 -timeout=10
    [ -f "tests/fuzz/$name.dict" ] && set -- "$@" -dict="tests/fuzz/$name.dict"
    seeds=
    [ -d "tests/fuzz/corpus/$name" ] && seeds=tests/fuzz/corpus/$name

    if [ "$mode" = smoke ]; then
        if [ -n "$seeds" ] && ! "$bin" "$@" -runs=0 "$seeds" > "$log" 2>&1; then
            echo "fuzz-smoke: $name: a committed input fails:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        if ! "$bin" "$@" -max_total_time="$secs" "$dir/corpus" $seeds >> "$log" 2>&1; then
            echo "fuzz-smoke: $name failed (input in $dir/artifacts/):" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        return 0
    fi

    end=$(( $(date +%s) + secs ))
    : > "$log"
    while left=$(( end - $(date +%s) )); [ "$left" -gt 0 ]; do
        "$bin" "$@" -max_total_time="$left" "$dir/corpus" $seeds >> "$log" 2>&1 && break
        # a crash ends libFuzzer's run: note it, go on with the time left
        [ "$(ls "$dir/artifacts" | wc -l)" -ge 20 ] && break
    done
    return 0
}

if [ "${1:-}" = --one ]; then
    shift
    one "$@" < /dev/null
    exit $?
fi

mode=campaign
if [ "${1:-}" = --smoke ]; then
    mode=smoke
    shift
    secs=${1:-20}
else
    secs=${1:-60}
fi
jobs=${2:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
[ "$mode" = smoke ] && jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)

names=$(ls "$bins" 2>/dev/null | sed -n 's/^fuzz_\([A-Za-z0-9_]*\)$/\1/p')
if [ -z "$names" ]; then
    echo "$0: no fuzz targets in $bins (make fuzz)" >&2
    exit 1
fi

# libFuzzer finds the suppressions by path: make it absolute at run time
LSAN_OPTIONS="suppressions=$(pwd)/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS UBSAN_OPTIONS bins work

echo "$mode: $(echo $names | wc -w) targets, ${secs}s each, $jobs at a time" >&2
echo "$names" | xargs -P "$jobs" -I{} sh "$0" --one "$mode" {} "$secs"
rc=$?

printf '%-20s %12s %9s %8s %8s %8s\n' target executions exec/s crashes cov ft
for name in $names; do
    dir=$work/$name
    crashes=$(ls "$dir/artifacts" 2>/dev/null | grep -c -E '^(crash|leak|timeout|oom|slow-unit)-')
    awk -v name="$name" -v secs="$secs" -v crashes="$crashes" '
        /^stat::number_of_executed_units:/ { execs += $2 }
        / cov: [0-9]+ ft: [0-9]+/ {
            for (i = 1; i < NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
            }
        }
        END { printf "%-20s %12d %9d %8d %8s %8s\n", name, execs, execs / (secs > 0 ? secs : 1),
                     crashes, cov == "" ? "-" : cov, ft == "" ? "-" : ft }
    ' "$dir/log" 2>/dev/null || printf '%-20s (no log)\n' "$name"
done
echo "new inputs and artifacts: $work/<target>/" >&2

if [ "$mode" = smoke ]; then
    [ $rc -eq 0 ] || { echo "fuzz-smoke: FAILED" >&2; exit 1; }
    echo "fuzz-smoke: passed" >&2
    exit 0
fi
[ $rc -eq 0 ] || exit 1
exit 0
