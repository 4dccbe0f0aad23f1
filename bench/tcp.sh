#!/usr/bin/env bash
# wharf TCP relay benchmark: wharf vs nginx (stream), haproxy (mode tcp), v2ray (dokodemo-door).
#
# Usage: bench/tcp.sh            (from anywhere; the repo root is found from this file)
# Env:   BULK_BYTES        bytes per bulk transfer, each way        (default 2147483648 = 2 GiB)
#        V2RAY_BULK_BYTES  bulk bytes for v2ray                     (default BULK_BYTES)
#        BULK_REPEAT       bulk transfers each way; the median is reported (default 3)
#        RR_COUNT          64-byte round trips (after a warm-up)    (default 20000)
#        CONN_SECONDS      duration of the connection-rate test     (default 5)
#        CONN_CONCURRENCY  parallel connecting clients              (default 32)
#        IDLE_N            idle streams for the memory test         (default 1000)
#        IDLE_HOLD         seconds the idle streams are held        (default 3)
#        PEERS             subset of "wharf nginx haproxy v2ray"    (default all four)
#        V2RAY_GOMAXPROCS  GOMAXPROCS for v2ray                     (default 1: one core, like
#                          the single worker / thread of the others)
#
# Every server runs on 127.0.0.1 with its own configuration in a fresh temporary directory,
# in the foreground, one after the other; each gets its own sink/source/echo upstreams (bench/loadgen.c).
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

BULK_BYTES=${BULK_BYTES:-2147483648}
V2RAY_BULK_BYTES=${V2RAY_BULK_BYTES:-$BULK_BYTES}
RR_COUNT=${RR_COUNT:-20000}
CONN_SECONDS=${CONN_SECONDS:-5}
CONN_CONCURRENCY=${CONN_CONCURRENCY:-32}
IDLE_N=${IDLE_N:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
BULK_REPEAT=${BULK_REPEAT:-3}
PEERS=${PEERS:-wharf nginx haproxy v2ray}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
ALL_PEERS="wharf nginx haproxy v2ray"

BULK_BYTES=$(to_bytes "$BULK_BYTES") && V2RAY_BULK_BYTES=$(to_bytes "$V2RAY_BULK_BYTES") || exit 1

check_list peer "$PEERS" "$ALL_PEERS"
need_wharf 'or set PEERS to benchmark only the others, e.g. PEERS="nginx haproxy v2ray"'
need_peers nginx haproxy v2ray

raise_nofile "$IDLE_N"
make_work wharf-bench
build_loadgen

# --------------------------------------------------------------- servers
# each start_* writes its config into $D, starts the server in the foreground (in the background of
# this script) and sets SERVER_PID. Ports: P_UP -> sink, P_DOWN -> source, P_RR -> echo.

start_wharf() { wharf_start 'network = "tcp"; security = "none";' up down rr; }
start_nginx() { nginx_start ""; }
start_haproxy() { haproxy_start ""; }
start_v2ray() {
    local ss='{ "network": "tcp", "security": "none" }'
    v2ray_conf "up $P_UP $U_SINK $ss" "down $P_DOWN $U_SOURCE $ss" "rr $P_RR $U_ECHO $ss"
}

# ------------------------------------------------------------------ run

say "wharf TCP relay benchmark"
say "command: BULK_BYTES=$BULK_BYTES BULK_REPEAT=$BULK_REPEAT V2RAY_BULK_BYTES=$V2RAY_BULK_BYTES RR_COUNT=$RR_COUNT CONN_SECONDS=$CONN_SECONDS CONN_CONCURRENCY=$CONN_CONCURRENCY IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS bench/tcp.sh${*:+ $*}"
machine_header
say "setup: 127.0.0.1 only; wharf worker_processes=1, nginx worker_processes 1, haproxy nbthread 1, v2ray GOMAXPROCS=$V2RAY_GOMAXPROCS"
say ""

has_peer nginx && { nginx_stream_module || exit 1; }

declare -A R   # R[figure,peer]

run_peer() {
    local peer=$1 pid out bytes
    local -a BULK_UP BULK_DOWN

    new_case "$peer"
    if ! "start_$peer"; then
        err "$peer: cannot start"; return 1
    fi
    pid=$SERVER_PID
    started "$pid"
    if ! wait_ready "$peer: port %s not ready (server %s); its output:" \
            "$U_SINK" "$U_SOURCE" "$U_ECHO" "$P_UP" "$P_DOWN" "$P_RR"; then
        stop_pids "$pid" "${LGPIDS[@]}"
        return 1
    fi
    sleep 0.3
    say "== $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"

    bytes=$BULK_BYTES
    [ "$peer" = v2ray ] && bytes=$V2RAY_BULK_BYTES
    BULK_UP=(bulk-up "$HOST" "$P_UP"); BULK_DOWN=(bulk-down "$HOST" "$P_DOWN")

    # warm-up: a short transfer each way, a few round trips
    timeout 60 "$LG" "${BULK_UP[@]}" 16m >/dev/null
    timeout 60 "$LG" "${BULK_DOWN[@]}" 16m >/dev/null

    # bulk up and down (BULK_REPEAT runs each way, median), with the relay's CPU time
    bulk_pair "" "$peer" "$bytes"
    say "   bulk median: up ${R[up,$peer]} MiB/s, down ${R[down,$peer]} MiB/s; relay cpu s/GiB: up ${R[cpuup,$peer]:--}, down ${R[cpudown,$peer]:--}, both ${R[cpu,$peer]:--}"

    # request/response latency
    out=$(timeout 120 "$LG" rr $HOST "$P_RR" "$RR_COUNT") || err "$peer: rr failed"
    say "   $out"
    R[p50,$peer]=$(printf '%s\n' "$out" | kv p50_us)
    R[p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)

    # memory per idle stream
    sleep 0.5
    idle_rss 600 "$D/idle.out" : idle $HOST "$P_RR" "$IDLE_N" "$IDLE_HOLD" ||
        err "$peer: idle failed: $(cat "$D/idle.out")"
    if [ -n "$RSS1" ]; then
        R[idle,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / $IDLE_N")
        say "   idle: $IDLE_N streams, rss $RSS0 -> $RSS1 KiB: ${R[idle,$peer]} KiB/stream"
    else
        R[idle,$peer]=""
    fi
    sleep 0.5

    # new connections per second
    out=$(timeout $(( CONN_SECONDS + 60 )) "$LG" connrate $HOST "$P_RR" "$CONN_SECONDS" "$CONN_CONCURRENCY") ||
        err "$peer: connrate failed"
    say "   $out"
    R[cps,$peer]=$(printf '%s\n' "$out" | kv cps)

    stop_pids "$pid"
    stop_pids "${LGPIDS[@]}"
    return 0
}

for peer in $PEERS; do
    run_peer "$peer" || err "$peer: skipped"
done

# ----------------------------------------------------------------- table
say ""
NAME_W=22 CELL_W=11
fmt_row figure wharf nginx haproxy v2ray w/nginx w/haproxy w/v2ray
for f in up down cpu p50 p99 cps idle; do
    case $f in
    up) name="bulk up MiB/s" ;; down) name="bulk down MiB/s" ;; cpu) name="cpu s/GiB" ;;
    p50) name="rr p50 us" ;; p99) name="rr p99 us" ;; cps) name="conn/s" ;; idle) name="idle KiB/stream" ;;
    esac
    fmt_row "$name" "$(val $f wharf)" "$(val $f nginx)" "$(val $f haproxy)" "$(val $f v2ray)" \
        "$(ratio $f nginx)" "$(ratio $f haproxy)" "$(ratio $f v2ray)"
done

say ""
say "targets:"
# target NAME FIG OP REF_PEER FACTOR   (wharf FIG OP FACTOR*REF); REF_PEER "-" = constant FACTOR
TARGET_W=34
target "bulk up >= nginx" up ge nginx 1
target "bulk down >= nginx" down ge nginx 1
target "cpu s/GiB <= nginx" cpu le nginx 1
target "conn/s >= haproxy" cps ge haproxy 1
target "rr p99 <= 1.1 x haproxy" p99 le haproxy 1.1
target "idle <= 2 KiB/stream" idle le - 2
exit 0
