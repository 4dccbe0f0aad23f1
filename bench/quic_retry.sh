#!/usr/bin/env bash
# wharf QUIC under a flood of Initials: what one worker spends per client Initial when it opens a
# connection for each (quicSettings.retry out of reach) and when it answers each with a stateless
# Retry (retry = 0). objs/quic-flood sends real client Initials (a GnuTLS ClientHello each, QUIC v1,
# security none) from a fresh ephemeral port each, at RATE per second for SECONDS, and never answers.
# For every RATE a fresh wharf (worker_processes = 1) is started, so no handshake is left over from
# the rate before.
# Figures per mode and rate: Initials sent, read by the worker (datagrams_in of wharf -S: the rest
# was lost in a full socket buffer), answered (a Retry, or the server's Initial: it opened a
# connection), the worker's CPU (utime+stime from /proc, % of one core from the flood's start to
# LINGER seconds after its end), its CPU per Initial read (µs, retransmissions of the connections
# included) and the rate one core would absorb at that cost, and the worker's RSS at the end.
# The generator runs on the same machine: on a small one it competes with the worker.
#
# Usage: bench/quic_retry.sh     (from anywhere; the repo root is found from this file)
# Env:   RATES     Initials per second, a blank-separated list        (default "500 1000 2000 4000")
#        FLOOD_SECONDS  seconds of flood per rate                     (default 3)
#        MODES     subset of "connect retry"                          (default both)
#        LINGER    seconds quic-flood waits for late replies          (default 2)

. "$(dirname "$0")/lib.sh"

RATES=${RATES:-"500 1000 2000 4000"}
DUR=${FLOOD_SECONDS:-3}
MODES=${MODES:-"connect retry"}
LINGER=${LINGER:-2}
FLOOD=$ROOT/objs/quic-flood

check_list MODES "$MODES" "connect retry"
# shellcheck disable=SC2034  # read by need_wharf in lib.sh
PEERS=wharf
need_wharf "this bench has no other peer"
need_cmd "$FLOOD" "build it: make (objs/quic-flood)"
raise_nofile 8192
make_work quic-retry

run_case() {   # run_case MODE RATE: one line of figures
    local mode=$1 rate=$2 retry port pid worker t0 t1 c0 c1 out sent read retries hs cpu_pct us per_s rss
    case $mode in connect) retry=1000000 ;; retry) retry=0 ;; esac
    port=$(free_port)
    cat > "$WORK/wharf.conf" <<END
daemon = false;
user = "nobody";
worker_processes = 1;
pid = "$WORK/wharf.pid";
error_log = "$WORK/error.log";
log_level = "warning";
listeners = ( { tag = "q"; listen = "$HOST"; port = $port; upstream = "echo";
  streamSettings = { network = "quic"; quicSettings = { security = "none"; retry = $retry; }; }; } );
END
    "$WHARF" -p "$WORK/" -c "$WORK/wharf.conf" & pid=$!
    started "$pid"
    for _ in $(seq 100); do worker=$(pgrep -P "$pid" | head -n 1); [ -n "$worker" ] && break; sleep 0.05; done
    if [ -z "$worker" ]; then err "wharf did not start a worker:"; cat "$WORK/error.log" >&2; exit 1; fi
    sleep 0.5
    c0=$(cpu_ticks "$worker"); t0=$(date +%s.%N)
    out=$("$FLOOD" -r "$rate" -d "$DUR" -w "$LINGER" "$HOST" "$port")
    c1=$(cpu_ticks "$worker"); t1=$(date +%s.%N)
    rss=$(rss_kib "$worker")
    read=$("$WHARF" -p "$WORK/" -c "$WORK/wharf.conf" -S | awk '$1 == "listener" { d = /datagrams_in/ }
                                                               d && $1 == "q" { print $2 }')
    stop_pids "$pid"
    sent=$(echo " $out" | kv sent); retries=$(echo " $out" | kv retry); hs=$(echo " $out" | kv handshake)
    cpu_pct=$(calc "%.0f" "($c1 - $c0) * 100 / $CLK_TCK / ($t1 - $t0)")
    us=$(calc "%.0f" "($c1 - $c0) * 1000000 / $CLK_TCK / (${read:-0} > 0 ? ${read:-0} : 1)")
    per_s=$(calc "%.0f" "($us > 0 ? 1000000 / $us : 0)")
    printf '%-8s %6s %7s %7s %7s %9s %5s%% %8s %9s %8s\n' "$mode" "$rate" "$sent" "${read:-?}" \
        "$retries" "$hs" "$cpu_pct" "$us" "$per_s" "$rss"
}

say "quic-flood -r RATE -d $DUR (no -S) against one worker; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-8s %6s %7s %7s %7s %9s %6s %8s %9s %8s\n' mode rate sent read retry handshake cpu \
    "us/init" "init/s@1" rss_kib
for mode in $MODES; do
    for rate in $RATES; do run_case "$mode" "$rate"; done
done
