#!/usr/bin/env bash
# wharf WebSocket benchmark (V2Ray 4.34 "ws" transport, plain and over TLS): wharf vs v2ray as the
# ws server, in one run, two ways:
#   A "via"     the real V2Ray client in front: loadgen (plain TCP) -> v2ray client.json (dokodemo-door
#               on LOCAL_PORT, freedom over ws) -> SERVER (wharf, or v2ray server.json) -> upstream.
#               The client usually is the bottleneck; its throughput is printed anyway.
#   B "direct"  loadgen's own WebSocket client (bench/loadgen.c --ws, and --tls for ws-tls) talks to
#               the SERVER itself: no V2Ray client in the path.
# Figures for each: bulk up and down (MiB/s), SERVER CPU seconds per GiB (utime+stime of the server
# process(es) only, from /proc: the figure that matters), 64-byte request/response p50/p99 (echo
# upstream), memory per idle stream on the SERVER (IDLE_N idle streams, server RSS delta / IDLE_N).
#
# Usage: bench/ws.sh            (from anywhere; the repo root is found from this file)
# Env:   BULK_BYTES        bytes per bulk transfer in B (direct), each way (default 536870912 = 512 MiB)
#        VIA_BULK_BYTES    bytes per bulk transfer in A (via the client)    (default 268435456 = 256 MiB)
#        BULK_REPEAT       bulk transfers each way; the median is reported   (default 3)
#        RR_COUNT          64-byte round trips (after a warm-up of RR_COUNT/10) (default 10000)
#        IDLE_N            idle streams for the memory test                  (default 1000)
#        IDLE_HOLD         seconds the idle streams are held                 (default 3)
#        WS_FRAME          largest frame payload loadgen sends in B, one write each (default 4096:
#                          gorilla's write buffer in the V2Ray 4.34 client; a longer message goes as
#                          a frame and continuation frames)
#        WS_MSG            bytes per message loadgen sends in B (default 2048: the V2Ray 4.34 client
#                          writes each 2048-byte buffer as one message); WS_FRAME=64k WS_MSG=0 gives
#                          the large-frame measure (one 64 KiB frame per write)
#        PEERS             subset of "wharf v2ray" (the ws server)           (default both)
#        TRANSPORTS        subset of "ws ws-tls"                             (default both)
#        MODES             subset of "via direct" (A, B)                     (default both)
#        V2RAY_GOMAXPROCS  GOMAXPROCS of the v2ray SERVER (default 1: one core, like wharf's single
#                          worker)
#        CLIENT_GOMAXPROCS GOMAXPROCS of the v2ray CLIENT in A               (default nproc)
#        WHARF_SHARED      the shared folder with interop/                   (default ../shared
#                          relative to the repo root)
#
# V2Ray configs: the interop fixtures interop/cases/ws and ws-tls, rendered with interop/render.sh
# (one rendering per upstream: up -> sink, down -> source, rr -> echo) and merged into one v2ray
# process each for the server and for the client (inbounds and outbounds renamed by upstream; the
# client routes each inbound to its own outbound). TLS: a fresh self-signed P-256 certificate from
# interop/mkcert.sh; the V2Ray client verifies it (SNI localhost) and offers ALPN http/1.1; loadgen
# (B) uses TLS 1.3 TLS_AES_128_GCM_SHA256, ALPN http/1.1, no verification. loadgen's WebSocket
# client sends what the V2Ray client sends: WS_MSG-byte messages as masked frames of at most WS_FRAME
# bytes (gorilla's framing), one write (one TLS record) each, so a server's per-frame and per-record
# costs count in B as they do in A.
# Each (transport, A|B, server) case gets a fresh server, a fresh client and fresh upstreams, and
# runs in this order: rr (whose warm-up is the server's first stream), idle memory (so neither
# server has grown or freed heap in a bulk transfer before), then bulk. bulk-up uses loadgen --ack:
# the sink answers one byte once the last byte arrived, which ends the clock (V2Ray's ws server
# holds a stream for its 1 s uplinkOnly timer after the upstream closed, and a V2Ray client never
# half-closes the transport, so the close would come 1-2 s late).
# Targets (from the issue): server CPU s/GiB <= 1/3 of v2ray's, rr p99 <= 0.7 x v2ray's, idle memory
# per stream <= 1/10 of v2ray's, each for ws and ws-tls. They use A's figures unless the V2Ray client
# is the bottleneck in A (wharf's bulk via the client below 0.8 x direct, and the client spending more
# CPU per GiB than wharf); then B's, and the output says so.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

SHARED=${WHARF_SHARED:-$ROOT/../shared}
BULK_BYTES=${BULK_BYTES:-536870912}
VIA_BULK_BYTES=${VIA_BULK_BYTES:-268435456}
BULK_REPEAT=${BULK_REPEAT:-3}
RR_COUNT=${RR_COUNT:-10000}
IDLE_N=${IDLE_N:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
WS_FRAME=${WS_FRAME:-4096}
WS_MSG=${WS_MSG:-2048}
PEERS=${PEERS:-wharf v2ray}
TRANSPORTS=${TRANSPORTS:-ws ws-tls}
MODES=${MODES:-via direct}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
CLIENT_GOMAXPROCS=${CLIENT_GOMAXPROCS:-$(nproc)}
ALL_PEERS="wharf v2ray"
ALL_TRANSPORTS="ws ws-tls"
ALL_MODES="via direct"
WS_PATH=/wharf-ws   # the fixtures' path
V2RAY_VERSION_FIELDS=1-2,5-

BULK_BYTES=$(to_bytes "$BULK_BYTES") && VIA_BULK_BYTES=$(to_bytes "$VIA_BULK_BYTES") &&
    WS_FRAME=$(to_bytes "$WS_FRAME") && WS_MSG=$(to_bytes "$WS_MSG") || exit 1

check_list peer "$PEERS" "$ALL_PEERS"
check_list transport "$TRANSPORTS" "$ALL_TRANSPORTS"
check_list mode "$MODES" "$ALL_MODES"
need_wharf "or set PEERS=v2ray to benchmark only v2ray"
need_cmd v2ray "v2ray is not installed (apt-get install v2ray): it is the client in A and a server"
need_fixtures ws ws-tls
need_cmd openssl "openssl not found (apt-get install openssl)"

raise_nofile "$IDLE_N"
make_work wharf-ws
build_loadgen tls
fixture_cert

# --------------------------------------------------------------- servers
# start_PEER TRANSPORT writes its config into $D, starts the ws server in the foreground (in the
# background of this script) and sets SERVER_PID. Ports P_UP -> U_SINK, P_DOWN -> U_SOURCE,
# P_RR -> U_ECHO.

start_wharf() {
    local ws="wsSettings = { path = \"$WS_PATH\"; };"
    if [ "$1" = ws-tls ]; then
        wharf_start "network = \"ws\"; security = \"tls\"; $ws $(wharf_tls_settings)" up down rr
    else
        wharf_start "network = \"ws\"; security = \"none\"; $ws" up down rr
    fi
}

start_v2ray() { v2ray_fixture_server "$1"; }

# ------------------------------------------------------------------ run

say "wharf WebSocket (ws, ws+TLS) benchmark: wharf vs v2ray as the ws server"
say "command: BULK_BYTES=$BULK_BYTES VIA_BULK_BYTES=$VIA_BULK_BYTES BULK_REPEAT=$BULK_REPEAT RR_COUNT=$RR_COUNT IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD WS_FRAME=$WS_FRAME WS_MSG=$WS_MSG PEERS=\"$PEERS\" TRANSPORTS=\"$TRANSPORTS\" MODES=\"$MODES\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS CLIENT_GOMAXPROCS=$CLIENT_GOMAXPROCS bench/ws.sh${*:+ $*}"
machine_header aes
in_list "$PEERS" v2ray || say "  v2ray (client): $(version_of v2ray)"
say "  loadgen: $(openssl version | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 only; wharf worker_processes=1; v2ray server GOMAXPROCS=$V2RAY_GOMAXPROCS; v2ray client (A) GOMAXPROCS=$CLIENT_GOMAXPROCS; ws path $WS_PATH"
say "A (via): loadgen plain TCP -> v2ray client -> server -> upstream; B (direct): loadgen --ws [--tls] -> server -> upstream"
say "cpu = utime+stime of the server process(es) only (wharf: master + worker; v2ray: one process) per GiB relayed"
say ""

declare -A R   # R[TRANSPORT.MODE.FIG,PEER]

# run_case TRANSPORT MODE PEER
run_case() {
    local tr=$1 mode=$2 peer=$3 pid cpid="" out bytes k
    local -a LGOPT EP_UP EP_DOWN EP_RR WAITS BULK_UP BULK_DOWN
    k=$tr.$mode

    new_case "$tr-$mode-$peer"
    WAITS=("$U_SINK" "$U_SOURCE" "$U_ECHO" "$P_UP" "$P_DOWN" "$P_RR")
    if [ "$mode" = via ]; then
        L_UP=$(free_port); L_DOWN=$(free_port); L_RR=$(free_port)
        LGOPT=()
        EP_UP=("$HOST" "$L_UP"); EP_DOWN=("$HOST" "$L_DOWN"); EP_RR=("$HOST" "$L_RR")
    else
        LGOPT=(--ws "$WS_PATH" --ws-frame "$WS_FRAME" --ws-msg "$WS_MSG")
        [ "$tr" = ws-tls ] && LGOPT+=(--tls)
        EP_UP=("$HOST" "$P_UP"); EP_DOWN=("$HOST" "$P_DOWN"); EP_RR=("$HOST" "$P_RR")
    fi

    stop() {
        stop_pids ${cpid:+"$cpid"} "$pid" "${LGPIDS[@]}"
    }
    if ! "start_$peer" "$tr"; then
        err "$k/$peer: cannot start"; stop_pids "${LGPIDS[@]}"; return 1
    fi
    pid=$SERVER_PID
    started "$pid"
    if [ "$mode" = via ]; then
        if ! v2ray_fixture_client "$tr"; then
            err "$k/$peer: cannot start the v2ray client"; stop; return 1
        fi
        cpid=$CLIENT_PID
        started "$cpid"
        WAITS+=("$L_UP" "$L_DOWN" "$L_RR")
    fi
    wait_ready "$k/$peer: port %s not ready (%s); output:" "${WAITS[@]}" || { stop; return 1; }
    sleep 0.3
    if [ "$mode" = via ]; then
        say "== $tr A (via v2ray client pid $cpid): server $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"
    else
        say "== $tr B (direct, loadgen ${LGOPT[*]}): server $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"
    fi

    # request/response latency; its warm-up is the server's first stream
    out=$(timeout 120 "$LG" "${LGOPT[@]}" rr "${EP_RR[@]}" "$RR_COUNT") || err "$k/$peer: rr failed"
    say "   $out"
    R[$k.p50,$peer]=$(printf '%s\n' "$out" | kv p50_us)
    R[$k.p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)

    # memory per idle stream on the server (ws handshake done, one byte echoed, then idle)
    sleep 0.5
    idle_rss 1200 "$D/idle.out" : "${LGOPT[@]}" idle "${EP_RR[@]}" "$IDLE_N" "$IDLE_HOLD" ||
        err "$k/$peer: idle failed: $(cat "$D/idle.out")"
    if [ -n "$RSS1" ]; then
        R[$k.idle,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / $IDLE_N")
        say "   idle: $IDLE_N streams, server rss $RSS0 -> $RSS1 KiB: ${R[$k.idle,$peer]} KiB/stream"
    else
        R[$k.idle,$peer]=""
    fi
    sleep 1   # let the idle streams close everywhere

    bytes=$BULK_BYTES
    [ "$mode" = via ] && bytes=$VIA_BULK_BYTES
    BULK_UP=("${LGOPT[@]}" --ack bulk-up "${EP_UP[@]}"); BULK_DOWN=("${LGOPT[@]}" bulk-down "${EP_DOWN[@]}")

    # warm-up: a short transfer each way
    timeout 60 "$LG" "${BULK_UP[@]}" 16m >/dev/null || err "$k/$peer: warm-up up failed"
    timeout 60 "$LG" "${BULK_DOWN[@]}" 16m >/dev/null || err "$k/$peer: warm-up down failed"

    # bulk up and down (BULK_REPEAT runs each way, median), with the server's (and client's) CPU time
    bulk_pair "$k." "$k/$peer" "$bytes"
    say "   bulk median: up ${R[$k.up,$peer]:--} MiB/s, down ${R[$k.down,$peer]:--} MiB/s; server cpu s/GiB: up ${R[$k.cpuup,$peer]:--}, down ${R[$k.cpudown,$peer]:--}, both ${R[$k.cpu,$peer]:--}"
    if [ -n "$cpid" ]; then
        say "   v2ray client: cpu s/GiB up ${R[$k.ccpuup,$peer]:--}, down ${R[$k.ccpudown,$peer]:--}, both ${R[$k.ccpu,$peer]:--}; busy cores during bulk: up ${R[$k.cbusyup,$peer]:--}, down ${R[$k.cbusydown,$peer]:--} (of nproc=$(nproc))"
    fi

    stop
    return 0
}

for tr in $TRANSPORTS; do
    for mode in $MODES; do
        for peer in $PEERS; do
            run_case "$tr" "$mode" "$peer" || err "$tr/$mode/$peer: skipped"
        done
    done
done

# ----------------------------------------------------------------- tables
NAME_W=26 CELL_W=10
fig_name() {
    case $1 in
    up) echo "bulk up MiB/s" ;; down) echo "bulk down MiB/s" ;;
    cpuup) echo "server cpu up s/GiB" ;; cpudown) echo "server cpu down s/GiB" ;;
    cpu) echo "server cpu s/GiB" ;; ccpu) echo "v2ray client cpu s/GiB" ;;
    p50) echo "rr p50 us" ;; p99) echo "rr p99 us" ;; idle) echo "idle KiB/stream (server)" ;;
    esac
}
for tr in $TRANSPORTS; do
    say ""
    case $tr in ws) say "ws (security none)" ;; ws-tls) say "ws + TLS" ;; esac
    fmt_row figure "A wharf" "A v2ray" "A w/v2ray" "B wharf" "B v2ray" "B w/v2ray"
    for f in up down cpuup cpudown cpu ccpu p50 p99 idle; do
        row=()
        for mode in via direct; do
            if in_list "$MODES" "$mode" && { [ "$f" != ccpu ] || [ "$mode" = via ]; }; then
                row+=("$(val $tr.$mode.$f wharf)" "$(val $tr.$mode.$f v2ray)" "$(ratio $tr.$mode.$f v2ray)")
            else
                row+=(- - -)
            fi
        done
        fmt_row "$(fig_name $f)" "${row[@]}"
    done
done

# ----------------------------------------------------------------- targets
say ""
say "targets (A = via the V2Ray client, B = direct WebSocket client):"
# which mode's figures decide the targets of a transport; sets SRC and prints why
declare -A SRC
for tr in $TRANSPORTS; do
    if ! in_list "$MODES" via; then SRC[$tr]=direct; say "  $tr: targets use B (A not run)"; continue; fi
    if ! in_list "$MODES" direct; then SRC[$tr]=via; say "  $tr: targets use A (B not run)"; continue; fi
    a_bw=$(awk -v u="${R[$tr.via.up,wharf]:-}" -v d="${R[$tr.via.down,wharf]:-}" \
        'BEGIN { if (u != "" && d != "") printf "%.1f", (u + d) / 2 }')
    b_bw=$(awk -v u="${R[$tr.direct.up,wharf]:-}" -v d="${R[$tr.direct.down,wharf]:-}" \
        'BEGIN { if (u != "" && d != "") printf "%.1f", (u + d) / 2 }')
    ccpu=${R[$tr.via.ccpu,wharf]:-}
    scpu=${R[$tr.via.cpu,wharf]:-}
    if [ -z "$a_bw" ] || [ -z "$b_bw" ] || [ -z "$ccpu" ] || [ -z "$scpu" ]; then
        SRC[$tr]=direct
        say "  $tr: targets use B (no complete A/B bulk figures for wharf to tell whether the client is the bottleneck)"
        continue
    fi
    if awk -v a="$a_bw" -v b="$b_bw" -v c="$ccpu" -v s="$scpu" 'BEGIN { exit !(a < 0.8 * b && c > s) }'; then
        SRC[$tr]=direct
        say "  $tr: the V2Ray client is the bottleneck in A (wharf via the client $a_bw MiB/s vs $b_bw direct, mean of up and down; client cpu $ccpu s/GiB vs wharf's $scpu): targets use B's figures, A's shown for reference"
    else
        SRC[$tr]=via
        say "  $tr: the V2Ray client is not the bottleneck in A (wharf via the client $a_bw MiB/s vs $b_bw direct; client cpu $ccpu s/GiB vs wharf's $scpu): targets use A's figures, B's shown for reference"
    fi
done
# target_v2ray NAME TRANSPORT FIG FACTOR: wharf FIG <= FACTOR x v2ray FIG, in SRC[TRANSPORT]; the
# other mode's verdict for reference
target_v2ray() {
    local name=$1 tr=$2 f=$3 k=$4 mode res="" other="" m r
    mode=${SRC[$tr]}
    for m in via direct; do
        in_list "$MODES" "$m" || continue
        r=$(verdict_text "$tr.$m.$f" le v2ray "$k")
        if [ "$m" = "$mode" ]; then res=$r; else other="; $([ $m = via ] && echo A || echo B): $r"; fi
    done
    printf '  %-40s %s: %s%s\n' "$name" "$([ "$mode" = via ] && echo A || echo B)" "$res" "$other"
}
for tr in $TRANSPORTS; do
    target_v2ray "$tr server cpu s/GiB <= 1/3 x v2ray" "$tr" cpu 0.333333
    target_v2ray "$tr rr p99 <= 0.7 x v2ray" "$tr" p99 0.7
    target_v2ray "$tr idle KiB/stream <= 1/10 x v2ray" "$tr" idle 0.1
done
exit 0
