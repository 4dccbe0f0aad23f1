#!/bin/sh
# tests/fuzz/campaign.sh -- runs every built fuzz target and prints a table.
#
#   tests/fuzz/campaign.sh [SECONDS [JOBS]]     a campaign: SECONDS per target
#                                               (default 60), JOBS processes at
#                                               once (default: every core)
#   tests/fuzz/campaign.sh --smoke [SECONDS]    make fuzz-smoke: each committed
#                                               corpus replayed, then SECONDS
#                                               (default 20) of fuzzing; fails on
#                                               the first crash
#
# Run from the repository root (or a bundle made by tests/fuzz/bundle.sh).
# It needs only what `make fuzz` built (objs/fuzz/fuzz_*, or FUZZ_BIN_DIR),
# the shared libraries they link (libev, libconfig, OpenSSL, nghttp2,
# ngtcp2, GnuTLS), tests/fuzz/ (corpus, dictionaries, options, weights),
# tests/lsan.supp and a POSIX shell with awk and xargs: no compiler.
#
# FUZZ_RUNNER, if set, is put in front of every target's command line (split
# at blanks), e.g. a bundled dynamic loader and its --library-path. The
# processes are started here, never by libFuzzer's -fork/-jobs, which would
# start argv[0] again without the runner.
#
# When JOBS is more than the number of targets, the spare processes go to
# the slow targets, in proportion to their weight in tests/fuzz/weights
# (unlisted: none); FUZZ_PROCS=N instead gives every target N processes.
# A target's processes share its corpus folder (libFuzzer reads what the
# others found) and each has its own log and artifact prefix; the table
# sums them. tests/fuzz/<target>.options holds extra libFuzzer flags.
#
# New inputs go to FUZZ_WORK (default objs/fuzz/campaign/<target>/corpus),
# never into the committed corpus, which is read as a second corpus folder;
# crash, leak and timeout inputs to .../<target>/artifacts/P-* (P: the
# process). A campaign restarts a process that crashed for the rest of its
# time, so one bug does not end its run; the table counts the crashes.
# Seeds worth keeping are merged by hand:
# fuzz_<name> -merge=1 tests/fuzz/corpus/<name> <dir>.
set -u

bins=${FUZZ_BIN_DIR:-objs/fuzz}
work=${FUZZ_WORK:-objs/fuzz/campaign}

# one process of a target (run by xargs below): $1 mode, $2 seconds,
# $3 name, $4 its process number; the target's folders are made beforehand
one() {
    mode=$1 secs=$2 name=$3 proc=$4
    dir=$work/$name
    log=$dir/log.$proc
    set -- ${FUZZ_RUNNER:-} "$bins/fuzz_$name" \
        -artifact_prefix="$dir/artifacts/$proc-" -print_final_stats=1 -timeout=10
    [ -f "tests/fuzz/$name.dict" ] && set -- "$@" -dict="tests/fuzz/$name.dict"
    # shellcheck disable=SC2046 # flags, one or more a line; # starts a comment
    [ -f "tests/fuzz/$name.options" ] && set -- "$@" $(sed 's/#.*//' "tests/fuzz/$name.options")
    seeds=
    [ -d "tests/fuzz/corpus/$name" ] && seeds=tests/fuzz/corpus/$name

    if [ "$mode" = smoke ]; then
        if [ -n "$seeds" ] && ! "$@" -runs=0 "$seeds" > "$log" 2>&1; then
            echo "fuzz-smoke: $name: a committed input fails:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        if ! "$@" -max_total_time="$secs" "$dir/corpus" $seeds >> "$log" 2>&1; then
            echo "fuzz-smoke: $name failed (input in $dir/artifacts/):" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        return 0
    fi

    end=$(( $(date +%s) + secs ))
    : > "$log"
    while left=$(( end - $(date +%s) )); [ "$left" -gt 0 ]; do
        "$@" -max_total_time="$left" "$dir/corpus" $seeds >> "$log" 2>&1 && break
        # a crash ends libFuzzer's run: note it, go on with the time left
        [ "$(ls "$dir/artifacts" | grep -c "^$proc-")" -ge 20 ] && break
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
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS UBSAN_OPTIONS bins work

# processes per target: "name count" lines
if [ "$mode" = smoke ]; then
    plan=$(for name in $names; do echo "$name 1"; done)
else
    plan=$(for name in $names; do
               w=0
               [ -f tests/fuzz/weights ] \
                   && w=$(awk -v n="$name" '$1 == n { print $2 + 0; exit }' tests/fuzz/weights)
               echo "$name ${w:-0}"
           done | awk -v jobs="$jobs" -v fixed="${FUZZ_PROCS:-}" '
               { name[NR] = $1; w[NR] = $2; p[NR] = fixed != "" ? fixed + 0 : 1 }
               END {
                   # each spare process to the target with the most weight
                   # per process it already has
                   for (spare = jobs - NR; fixed == "" && spare > 0; spare--) {
                       best = 0
                       for (i = 1; i <= NR; i++)
                           if (w[i] > 0 && (best == 0 || w[i] / p[i] > w[best] / p[best]))
                               best = i
                       if (best == 0) break
                       p[best]++
                   }
                   for (i = 1; i <= NR; i++) print name[i], (p[i] > 0 ? p[i] : 1)
               }')
fi

for name in $names; do
    rm -rf "${work:?}/$name"
    mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
done
nprocs=$(echo "$plan" | awk '{ n += $2 } END { print n }')
echo "$mode: $(echo $names | wc -w) targets in $nprocs processes, ${secs}s each, $jobs at a time" >&2
[ -n "${FUZZ_RUNNER:-}" ] && echo "$mode: targets run by $FUZZ_RUNNER" >&2
echo "$plan" | awk '{ for (i = 0; i < $2; i++) print $1, i }' \
    | xargs -P "$jobs" -L 1 sh "$0" --one "$mode" "$secs"
rc=$?

printf '%-20s %5s %12s %9s %8s %8s %8s\n' target procs executions exec/s crashes cov ft
for name in $names; do
    dir=$work/$name
    crashes=$(ls "$dir/artifacts" 2>/dev/null | grep -c -E '^[0-9]+-(crash|leak|timeout|oom|slow-unit)-')
    # cov and ft: the most any one process reached (they overlap). Once
    # libFuzzer stops checking leaks per input (after 1000 checks that found
    # nothing) a leak shows only in the report at exit, with no input
    # written: counted as a crash too.
    awk -v name="$name" -v secs="$secs" -v crashes="$crashes" '
        FNR == 1 { procs++; cov = ft = 0; crashes += leak; leak = 0 }
        /^INFO: Seed: / { crashes += leak; leak = 0 }
        /ERROR: LeakSanitizer: detected memory leaks/ { leak = 1 }
        /Test unit written to/ { leak = 0 }
        /^stat::number_of_executed_units:/ { execs += $2 }
        / cov: [0-9]+ ft: [0-9]+/ {
            for (i = 1; i < NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
            }
            if (cov + 0 > maxcov) maxcov = cov + 0
            if (ft + 0 > maxft) maxft = ft + 0
        }
        END { crashes += leak
              printf "%-20s %5d %12d %9d %8d %8s %8s\n", name, procs, execs,
                     execs / (secs > 0 ? secs : 1), crashes,
                     maxcov == "" ? "-" : maxcov, maxft == "" ? "-" : maxft }
    ' "$dir"/log.* 2>/dev/null || printf '%-20s (no log)\n' "$name"
done
echo "new inputs and artifacts: $work/<target>/" >&2

if [ "$mode" = smoke ]; then
    [ $rc -eq 0 ] || { echo "fuzz-smoke: FAILED" >&2; exit 1; }
    echo "fuzz-smoke: passed" >&2
    exit 0
fi
[ $rc -eq 0 ] || exit 1
exit 0
