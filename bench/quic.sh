#!/usr/bin/env bash
# wharf QUIC benchmark (V2Ray 4.34 "quic" transport): wharf vs v2ray as the QUIC server, in one run,
# for each QUIC interop case (quic, quic-aes-srtp, quic-chacha-wireguard, quic-tls), through the real
# V2Ray client: loadgen (plain TCP) -> v2ray client.json (dokodemo-door on LOCAL_PORT, freedom over
# quic) -> SERVER (wharf, or v2ray server.json) -> upstream. There is no "direct" mode: nothing but
# quic-go speaks V2Ray's outer QUIC layer here.
# Figures: bulk up and down (MiB/s), SERVER CPU seconds per GiB (utime+stime of the server
# process(es) only, from /proc: the figure that matters), 64-byte request/response p50/p99 (echo
# upstream), memory per idle stream on the SERVER (IDLE_N idle streams, server RSS delta / IDLE_N).
#
# Usage: bench/quic.sh          (from anywhere; the repo root is found from this file)
# Env:   VIA_BULK_BYTES    bytes per bulk transfer, each way                 (default 134217728 = 128 MiB)
#        BULK_REPEAT       bulk transfers each way; the median is reported   (default 3)
#        RR_COUNT          64-byte round trips                               (default 5000)
#        IDLE_N            idle streams for the memory test                  (default 1000)
#        IDLE_HOLD         seconds the idle streams are held                 (default 3)
#        PEERS             subset of "wharf v2ray" (the QUIC server)         (default both)
#        CASES             subset of the four cases above                    (default all)
#        V2RAY_GOMAXPROCS  GOMAXPROCS of the v2ray SERVER (default 1: one core, like wharf's single
#                          worker)
#        CLIENT_GOMAXPROCS GOMAXPROCS of the v2ray CLIENT                    (default nproc)
#        WHARF_SHARED      the shared folder with interop/                   (default ../shared
#                          relative to the repo root)
#
# V2Ray configs: the interop fixtures, rendered with interop/render.sh (one rendering per upstream:
# up -> sink, down -> source, rr -> echo) and merged into one v2ray process each for the server and
# the client. wharf gets the same streamSettings. quic-tls: a fresh self-signed P-256 certificate
# from interop/mkcert.sh, verified by the client (SNI localhost). Each (case, server) gets a fresh
# server, client and upstreams, in this order: rr (its warm-up is the server's first stream), idle
# memory, a 16 MiB warm-up each way, bulk.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

SHARED=${WHARF_SHARED:-$ROOT/../shared}
VIA_BULK_BYTES=${VIA_BULK_BYTES:-134217728}
BULK_REPEAT=${BULK_REPEAT:-3}
RR_COUNT=${RR_COUNT:-5000}
IDLE_N=${IDLE_N:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
PEERS=${PEERS:-wharf v2ray}
ALL_CASES="quic quic-aes-srtp quic-chacha-wireguard quic-tls"
CASES=${CASES:-$ALL_CASES}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
CLIENT_GOMAXPROCS=${CLIENT_GOMAXPROCS:-$(nproc)}
ALL_PEERS="wharf v2ray"
V2RAY_VERSION_FIELDS=1-2,5-
export QUIC_KEY=wharf-bench-quic-key

VIA_BULK_BYTES=$(to_bytes "$VIA_BULK_BYTES") || exit 1

check_list peer "$PEERS" "$ALL_PEERS"
check_list case "$CASES" "$ALL_CASES"
need_wharf "or set PEERS=v2ray to benchmark only v2ray"
if has_peer wharf && ! "$WHARF" -V 2>&1 | grep -q '^modules:.* quic'; then
    err "this objs/wharf has no quic module (wharf -V); install libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev and run ./configure && make"
    exit 1
fi
need_cmd v2ray "v2ray is not installed (apt-get install v2ray): it is the client and a server"
# shellcheck disable=SC2086  # the list
need_fixtures $CASES
need_cmd openssl "openssl not found (apt-get install openssl)"

raise_nofile "$IDLE_N"
make_work wharf-quic
build_loadgen
fixture_cert

now() { date +%s.%N; }   # wall clock, seconds

LG_RETRY=$WORK/loadgen-retry
printf '#!/bin/sh\n"%s" "$@" && exit 0\necho "loadgen: $*: failed, tried once more" >&2\nexec "%s" "$@"\n' \
    "$LG" "$LG" >"$LG_RETRY"
chmod 755 "$LG_RETRY"

# --------------------------------------------------------------- servers

# the wharf streamSettings of a case: the fixture's server.json, as wharf.conf spells it
case_settings() {
    case $1 in
    quic) echo 'network = "quic"; security = "none";
      quicSettings = { security = "none"; key = ""; header = { type = "none"; }; };' ;;
    quic-aes-srtp) echo "network = \"quic\"; security = \"none\";
      quicSettings = { security = \"aes-128-gcm\"; key = \"$QUIC_KEY\"; header = { type = \"srtp\"; }; };" ;;
    quic-chacha-wireguard) echo "network = \"quic\"; security = \"none\";
      quicSettings = { security = \"chacha20-poly1305\"; key = \"$QUIC_KEY\"; header = { type = \"wireguard\"; }; };" ;;
    quic-tls) echo "network = \"quic\"; security = \"tls\"; $(wharf_tls_settings)
      quicSettings = { security = \"none\"; key = \"\"; header = { type = \"none\"; }; };" ;;
    esac
}

start_wharf() { wharf_start "$(case_settings "$CASE")" up down rr; }
start_v2ray() { v2ray_fixture_server "$CASE"; }

# ------------------------------------------------------------------ run

say "wharf QUIC benchmark: wharf vs v2ray as the QUIC server, through the V2Ray client"
say "command: VIA_BULK_BYTES=$VIA_BULK_BYTES BULK_REPEAT=$BULK_REPEAT RR_COUNT=$RR_COUNT IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" CASES=\"$CASES\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS CLIENT_GOMAXPROCS=$CLIENT_GOMAXPROCS bench/quic.sh${*:+ $*}"
machine_header aes loadavg
in_list "$PEERS" v2ray || say "  v2ray (client): $(version_of v2ray)"
say "setup: 127.0.0.1 only; wharf worker_processes=1; v2ray server GOMAXPROCS=$V2RAY_GOMAXPROCS; v2ray client GOMAXPROCS=$CLIENT_GOMAXPROCS"
say "loadgen plain TCP -> v2ray client -> server (UDP) -> upstream, one stream at a time (rr, bulk)"
say "cpu = utime+stime of the server process(es) only (wharf: master + worker; v2ray: one process) per GiB relayed"
say ""

# rr_run: 64-byte request/response through the client; sets R[CASE.p50/p99]
rr_run() {
    local out
    R[$CASE.p50,$peer]=""; R[$CASE.p99,$peer]=""
    if ! out=$(timeout 180 "$LG" rr $HOST "$L_RR" "$RR_COUNT" 2>&1); then
        err "$peer: rr failed: $out"; return
    fi
    say "   $out"
    R[$CASE.p50,$peer]=$(printf '%s\n' "$out" | kv p50_us)
    R[$CASE.p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)
}

# run_peer PEER
run_peer() {
    local peer=$1 pid cpid=""
    new_case "$CASE-$peer"
    L_UP=$(free_port); L_DOWN=$(free_port); L_RR=$(free_port)

    stop() {
        [ -n "$cpid" ] && stop_pids "$cpid"
        stop_pids "$pid" "${LGPIDS[@]}"
    }
    if ! "start_$peer"; then
        err "$peer: cannot start"; stop_pids "${LGPIDS[@]}"; return 1
    fi
    pid=$SERVER_PID
    started "$pid"
    # the server's ports are UDP: only the upstreams can be probed
    wait_ready "$peer: port %s not ready (%s); output:" "$U_SINK" "$U_SOURCE" "$U_ECHO" || { stop; return 1; }
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || { err "$peer: server exited"; tail -n 20 "$D/stderr" "$D/error.log" >&2; return 1; }

    if ! v2ray_fixture_client "$CASE"; then
        err "$peer: cannot start the v2ray client"; stop; return 1
    fi
    cpid=$CLIENT_PID
    started "$cpid"
    wait_ready "$peer: port %s not ready (%s); output:" "$L_UP" "$L_DOWN" "$L_RR" || { stop; return 1; }
    sleep 0.3
    say "== $CASE: server $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es)), v2ray client pid $cpid"

    rr_run

    # memory per idle stream on the server (stream set up, one byte echoed, then idle)
    sleep 0.5
    idle_rss 1200 "$D/idle.out" : idle $HOST "$L_RR" "$IDLE_N" "$IDLE_HOLD" ||
        err "$peer: idle failed: $(cat "$D/idle.out")"
    R[$CASE.idle,$peer]=""
    if [ -n "$RSS1" ]; then
        R[$CASE.idle,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / $IDLE_N")
        say "   idle: $IDLE_N streams, server rss $RSS0 -> $RSS1 KiB: ${R[$CASE.idle,$peer]} KiB/stream"
    fi
    sleep 1.5   # let the idle streams close everywhere

    timeout 60 "$LG" --ack bulk-up $HOST "$L_UP" 16m >/dev/null || err "$peer: warm-up up failed"
    timeout 60 "$LG" --poke bulk-down $HOST "$L_DOWN" 16m >/dev/null || err "$peer: warm-up down failed"
    BULK_UP=(--ack bulk-up $HOST "$L_UP")
    BULK_DOWN=(--poke bulk-down $HOST "$L_DOWN")
    # a v2ray server sometimes ends the first download after uploads at once (0 bytes): such a
    # transfer is tried once more, said on stderr, and its CPU time stays in the figure
    LG=$LG_RETRY bulk_pair "$CASE." "$peer" "$VIA_BULK_BYTES"
    say "   bulk median: up ${R[$CASE.up,$peer]:--} MiB/s, down ${R[$CASE.down,$peer]:--} MiB/s; server cpu s/GiB: up ${R[$CASE.cpuup,$peer]:--}, down ${R[$CASE.cpudown,$peer]:--}, both ${R[$CASE.cpu,$peer]:--}; v2ray client cpu s/GiB ${R[$CASE.ccpu,$peer]:--}"
    stop
    return 0
}

for CASE in $CASES; do
    for peer in $PEERS; do
        run_peer "$peer" || err "$CASE: $peer: skipped"
    done
done

# ----------------------------------------------------------------- tables
NAME_W=30 CELL_W=10
fig_name() {
    case $1 in
    up) echo "bulk up MiB/s" ;; down) echo "bulk down MiB/s" ;;
    cpuup) echo "server cpu up s/GiB" ;; cpudown) echo "server cpu down s/GiB" ;;
    cpu) echo "server cpu s/GiB" ;; ccpu) echo "v2ray client cpu s/GiB" ;;
    p50) echo "rr p50 us" ;; p99) echo "rr p99 us" ;; idle) echo "idle KiB/stream (server)" ;;
    esac
}
for CASE in $CASES; do
    say ""
    say "$CASE: via the V2Ray client"
    fmt_row figure wharf v2ray w/v2ray
    for f in up down cpuup cpudown cpu ccpu p50 p99 idle; do
        case $f in
        ccpu) fmt_row "$(fig_name $f)" "$(val $CASE.$f wharf)" "$(val $CASE.$f v2ray)" - ;;
        *) fmt_row "$(fig_name $f)" "$(val $CASE.$f wharf)" "$(val $CASE.$f v2ray)" "$(ratio $CASE.$f v2ray)" ;;
        esac
    done
done

# ----------------------------------------------------------------- targets
say ""
say "targets:"
target_v2ray() { printf '  %-52s %s\n' "$1" "$(verdict_text "$2" le v2ray "$3")"; }
for CASE in $CASES; do
    target_v2ray "$CASE server cpu s/GiB <= 1/3 x v2ray" "$CASE.cpu" 0.333333
    target_v2ray "$CASE rr p99 <= 0.7 x v2ray" "$CASE.p99" 0.7
    target_v2ray "$CASE idle KiB/stream <= 1/10 x v2ray" "$CASE.idle" 0.1
done
exit 0
