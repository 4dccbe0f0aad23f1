#!/usr/bin/env bash
# wharf mKCP benchmark (V2Ray 4.34 "kcp" transport, the interop fixture's defaults: mtu 1350, tti 50,
# uplink 5, downlink 20, simple security, no header): wharf vs v2ray as the mKCP server, in one run,
# through the real V2Ray client (there is no other mKCP client):
#   loadgen (plain TCP) -> v2ray client.json (dokodemo-door on LOCAL_PORT, freedom over kcp) -> SERVER
#   (wharf, or v2ray server.json) -> upstream (loadgen sink, source, echo).
# Figures: bulk up and down (MiB/s), SERVER CPU seconds per GiB (utime+stime of the server process(es)
# only, from /proc), 64-byte request/response p50/p99 (report only), memory per idle session on the
# SERVER (IDLE_N idle sessions, server RSS delta / IDLE_N), and bulk up and down through
# tests/integration/lossy_udp_relay.py dropping LOSS of the datagrams each way.
#
# Usage: bench/kcp.sh            (from anywhere; the repo root is found from this file)
# Env:   BULK_BYTES        bytes per bulk transfer, each way (default 67108864 = 64 MiB)
#        LOSSY_BYTES       bytes per bulk transfer through the lossy relay (default 16777216 = 16 MiB)
#        LOSS              fraction of datagrams the relay drops, each way (default 0.02)
#        BULK_REPEAT       bulk transfers each way; the median is reported   (default 1)
#        RR_COUNT          64-byte round trips (about 100 ms each through v2ray) (default 1000)
#        IDLE_N            idle sessions for the memory test                 (default 100)
#        IDLE_HOLD         seconds the idle sessions are held                (default 3)
#        PEERS             subset of "wharf v2ray" (the mKCP server)         (default both)
#        V2RAY_GOMAXPROCS  GOMAXPROCS of the v2ray SERVER (default 1: one core, like wharf's worker)
#        CLIENT_GOMAXPROCS GOMAXPROCS of the v2ray CLIENT                    (default nproc)
#        WHARF_SHARED      the shared folder with interop/ (default ../shared relative to the repo root)
#
# Each (case, server) gets a fresh server, a fresh client and fresh upstreams, in this order: idle
# memory (first, while the server is fresh), rr, bulk; then the lossy bulk with its own fresh set. mKCP sessions reach the server only
# once the client sends, so the idle sessions are those of loadgen's idle test (one byte echoed).
# Targets (from the issue): bulk >= v2ray's (mean of up and down), server CPU s/GiB <= 1/2 of
# v2ray's, idle memory per session <= 1/10 of v2ray's.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

SHARED=${WHARF_SHARED:-$ROOT/../shared}
BULK_BYTES=${BULK_BYTES:-67108864}
LOSSY_BYTES=${LOSSY_BYTES:-16777216}
LOSS=${LOSS:-0.02}
BULK_REPEAT=${BULK_REPEAT:-1}
RR_COUNT=${RR_COUNT:-1000}
IDLE_N=${IDLE_N:-100}
IDLE_HOLD=${IDLE_HOLD:-3}
PEERS=${PEERS:-wharf v2ray}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
CLIENT_GOMAXPROCS=${CLIENT_GOMAXPROCS:-$(nproc)}
ALL_PEERS="wharf v2ray"
RELAY=$ROOT/tests/integration/lossy_udp_relay.py
V2RAY_VERSION_FIELDS=1-2,5-

BULK_BYTES=$(to_bytes "$BULK_BYTES") && LOSSY_BYTES=$(to_bytes "$LOSSY_BYTES") || exit 1

check_list peer "$PEERS" "$ALL_PEERS"
need_wharf "or set PEERS=v2ray to benchmark only v2ray"
need_cmd v2ray "v2ray is not installed (apt-get install v2ray): it is the client and a server"
need_fixtures kcp

raise_nofile "$IDLE_N"
make_work wharf-kcp
build_loadgen
CERT="" KEY=""   # render() fills the TLS variables too; the kcp fixture has none

start_wharf() {
    wharf_start "network = \"kcp\"; security = \"none\"; kcpSettings = { mtu = 1350; tti = 50;
      uplinkCapacity = 5; downlinkCapacity = 20; congestion = false; readBufferSize = 2;
      writeBufferSize = 2; header = { type = \"none\"; }; };" up down rr
}
start_v2ray() { v2ray_fixture_server kcp; }

say "wharf mKCP benchmark: wharf vs v2ray as the mKCP server, through the V2Ray client"
say "command: BULK_BYTES=$BULK_BYTES LOSSY_BYTES=$LOSSY_BYTES LOSS=$LOSS BULK_REPEAT=$BULK_REPEAT RR_COUNT=$RR_COUNT IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS CLIENT_GOMAXPROCS=$CLIENT_GOMAXPROCS bench/kcp.sh${*:+ $*}"
machine_header
in_list "$PEERS" v2ray || say "  v2ray (client): $(version_of v2ray)"
say "setup: 127.0.0.1 only; wharf worker_processes=1; v2ray server GOMAXPROCS=$V2RAY_GOMAXPROCS; client GOMAXPROCS=$CLIENT_GOMAXPROCS"
say "cpu = utime+stime of the server process(es) only (wharf: master + worker; v2ray: one process) per GiB relayed"
say ""

# run_case clean|lossy PEER
run_case() {
    local kind=$1 peer=$2 pid cpid="" out bytes k=$1 rpids=() s_up s_down
    local -a BULK_UP BULK_DOWN

    new_case "$kind-$peer"
    L_UP=$(free_port); L_DOWN=$(free_port); L_RR=$(free_port)
    stop() { stop_pids ${cpid:+"$cpid"} "$pid" "${rpids[@]}" "${LGPIDS[@]}"; }
    if ! "start_$peer"; then err "$k/$peer: cannot start"; stop_pids "${LGPIDS[@]}"; return 1; fi
    pid=$SERVER_PID
    started "$pid"
    s_up=$P_UP; s_down=$P_DOWN
    if [ "$kind" = lossy ]; then
        # the client talks to two relays, which talk to the server
        R_UP=$(free_port); R_DOWN=$(free_port)
        "$PY" "$RELAY" --listen "$HOST:$R_UP" --to "$HOST:$P_UP" --loss "$LOSS" --seed 1 \
            --lifetime 900 >"$D/relay-up.out" 2>&1 &
        rpids+=($!)
        "$PY" "$RELAY" --listen "$HOST:$R_DOWN" --to "$HOST:$P_DOWN" --loss "$LOSS" --seed 2 \
            --lifetime 900 >"$D/relay-down.out" 2>&1 &
        rpids+=($!)
        started "${rpids[@]}"
        P_UP=$R_UP; P_DOWN=$R_DOWN
    fi
    if ! v2ray_fixture_client kcp; then err "$k/$peer: cannot start the v2ray client"; stop; return 1; fi
    P_UP=$s_up; P_DOWN=$s_down
    cpid=$CLIENT_PID
    started "$cpid"
    # the server's ports are UDP: wait for the upstreams and the client's ports only
    wait_ready "$k/$peer: port %s not ready (%s); output:" "$U_SINK" "$U_SOURCE" "$U_ECHO" \
        "$L_UP" "$L_DOWN" "$L_RR" || { stop; return 1; }
    sleep 0.5
    say "== $kind: server $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es)), v2ray client pid $cpid"

    if [ "$kind" = clean ]; then
        # idle first, on a fresh server: after the rr run a Go heap has grown
        # already, and the RSS delta would hide what the sessions take
        idle_rss 1200 "$D/idle.out" : idle "$HOST" "$L_RR" "$IDLE_N" "$IDLE_HOLD" ||
            err "$k/$peer: idle failed: $(cat "$D/idle.out")"
        if [ -n "$RSS1" ]; then
            R[$k.idle,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / $IDLE_N")
            say "   idle: $IDLE_N sessions, server rss $RSS0 -> $RSS1 KiB: ${R[$k.idle,$peer]} KiB/session"
        else
            R[$k.idle,$peer]=""
        fi
        sleep 0.5
        out=$(timeout $((RR_COUNT / 5 + 30)) "$LG" rr "$HOST" "$L_RR" "$RR_COUNT") || err "$k/$peer: rr failed"
        say "   $out"
        R[$k.p50,$peer]=$(printf '%s\n' "$out" | kv p50_us)
        R[$k.p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)

        sleep 1
        bytes=$BULK_BYTES
    else
        bytes=$LOSSY_BYTES
    fi

    # --poke: a V2Ray mKCP client sends nothing until its application writes
    # (spec 9.4), so a download would otherwise start with its 5 s PING
    BULK_UP=(--ack bulk-up "$HOST" "$L_UP"); BULK_DOWN=(--poke bulk-down "$HOST" "$L_DOWN")
    timeout 60 "$LG" "${BULK_UP[@]}" 4m >/dev/null || err "$k/$peer: warm-up up failed"
    timeout 60 "$LG" "${BULK_DOWN[@]}" 4m >/dev/null || err "$k/$peer: warm-up down failed"
    bulk_pair "$k." "$k/$peer" "$bytes"
    say "   bulk median: up ${R[$k.up,$peer]:--} MiB/s, down ${R[$k.down,$peer]:--} MiB/s; server cpu s/GiB: up ${R[$k.cpuup,$peer]:--}, down ${R[$k.cpudown,$peer]:--}, both ${R[$k.cpu,$peer]:--}"
    R[$k.bulk,$peer]=$(awk -v u="${R[$k.up,$peer]:-}" -v d="${R[$k.down,$peer]:-}" \
        'BEGIN { if (u != "" && d != "") printf "%.2f", (u + d) / 2 }')
    stop
    return 0
}

for kind in clean lossy; do
    for peer in $PEERS; do
        run_case "$kind" "$peer" || err "$kind/$peer: skipped"
    done
done

NAME_W=30 CELL_W=10
fig_name() {
    case $1 in
    up) echo "bulk up MiB/s" ;; down) echo "bulk down MiB/s" ;; bulk) echo "bulk mean MiB/s" ;;
    cpuup) echo "server cpu up s/GiB" ;; cpudown) echo "server cpu down s/GiB" ;;
    cpu) echo "server cpu s/GiB" ;; ccpu) echo "v2ray client cpu s/GiB" ;;
    p50) echo "rr p50 us" ;; p99) echo "rr p99 us" ;; idle) echo "idle KiB/session (server)" ;;
    esac
}
say ""
fmt_row figure wharf v2ray "w/v2ray"
for f in up down bulk cpuup cpudown cpu ccpu p50 p99 idle; do
    fmt_row "$(fig_name "$f")" "$(val clean.$f wharf)" "$(val clean.$f v2ray)" "$(ratio clean.$f v2ray)"
done
for f in up down bulk cpu; do
    fmt_row "lossy $LOSS: $(fig_name "$f")" "$(val lossy.$f wharf)" "$(val lossy.$f v2ray)" "$(ratio lossy.$f v2ray)"
done
say ""
say "targets:"
TARGET_W=40
target "bulk mean >= v2ray" clean.bulk ge v2ray 1
target "server cpu s/GiB <= 1/2 x v2ray" clean.cpu le v2ray 0.5
target "idle KiB/session <= 1/10 x v2ray" clean.idle le v2ray 0.1
target "lossy bulk mean >= v2ray (report)" lossy.bulk ge v2ray 1
exit 0
