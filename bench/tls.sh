#!/usr/bin/env bash
# wharf TLS, domainsocket and tcp "http" header benchmark, on loopback, in one run:
#   tls   tcp+TLS: wharf vs nginx (stream, "listen ... ssl"), haproxy (mode tcp, "bind ... ssl crt")
#         and v2ray (dokodemo-door with streamSettings tls): bulk each way through TLS, relay CPU,
#         full TLS handshakes per second, memory per idle TLS stream
#   ds    domainsocket: wharf vs v2ray (dsSettings.path): bulk each way over the unix socket, CPU
#   http  tcp "http" header obfuscation (V2Ray defaults): wharf vs v2ray: bulk each way, CPU; only
#         when this build of wharf accepts header type "http" (else skipped with a note)
#
# Usage: bench/tls.sh            (from anywhere; the repo root is found from this file)
# Env:   BULK_BYTES        bytes per bulk transfer, each way        (default 1073741824 = 1 GiB)
#        V2RAY_BULK_BYTES  bulk bytes for v2ray                     (default BULK_BYTES)
#        BULK_REPEAT       bulk transfers each way; the median is reported (default 3)
#        HS_SECONDS        duration of the TLS handshake-rate test  (default 5)
#        HS_CONCURRENCY    parallel handshaking clients             (default 32)
#        IDLE_N            idle TLS streams for the memory test     (default 1000)
#        IDLE_HOLD         seconds the idle streams are held        (default 3)
#        PEERS             subset of "wharf nginx haproxy v2ray"    (default all four; the ds and
#                          http parts use only wharf and v2ray)
#        PARTS             subset of "tls ds http"                  (default all three)
#        V2RAY_GOMAXPROCS  GOMAXPROCS for v2ray                     (default 1: one core, like
#                          the single worker / thread of the others)
#
# Client: bench/loadgen.c built with OpenSSL (-DLOADGEN_TLS): TLS 1.3 only, TLS_AES_128_GCM_SHA256,
# default key share (X25519), ALPN h2,http/1.1 offered (as a V2Ray client), no SNI, no verification,
# no session cache, no tickets: each handshake is a full one. The server certificate is a fresh
# self-signed P-256 (ECDSA) one. Session tickets are off on every server (wharf and v2ray by default;
# nginx "ssl_session_tickets off", haproxy "no-tls-tickets"), so all four do the same work.
# handshakes/s is a whole-machine figure: the client's handshakes (OpenSSL 3.0 costs a client about as
# much CPU as a server) share the cores with the relay, so the relay's own CPU per handshake ("cpu
# us/handshake") is printed as well; it compares the relays independently of the client.
# Every server runs on 127.0.0.1 (or unix sockets in the temporary directory) with its own
# configuration in a fresh temporary directory, in the foreground, one after the other; each gets its
# own sink/source/echo upstreams.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

BULK_BYTES=${BULK_BYTES:-1073741824}
V2RAY_BULK_BYTES=${V2RAY_BULK_BYTES:-$BULK_BYTES}
BULK_REPEAT=${BULK_REPEAT:-3}
HS_SECONDS=${HS_SECONDS:-5}
HS_CONCURRENCY=${HS_CONCURRENCY:-32}
IDLE_N=${IDLE_N:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
PEERS=${PEERS:-wharf nginx haproxy v2ray}
PARTS=${PARTS:-tls ds http}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
ALL_PEERS="wharf nginx haproxy v2ray"
ALL_PARTS="tls ds http"

BULK_BYTES=$(to_bytes "$BULK_BYTES") && V2RAY_BULK_BYTES=$(to_bytes "$V2RAY_BULK_BYTES") || exit 1

check_list peer "$PEERS" "$ALL_PEERS"
check_list part "$PARTS" "$ALL_PARTS"
has_part() { in_list "$PARTS" "$1"; }
need_wharf 'or set PEERS to benchmark only the others, e.g. PEERS="nginx haproxy v2ray"'
need_peers nginx haproxy v2ray
need_cmd openssl "openssl not found (apt-get install openssl)"

raise_nofile "$IDLE_N"
make_work wharf-tls
build_loadgen tls

p256_cert

# --------------------------------------------------------------- servers
# start_PART_PEER writes its config into $D, starts the server in the foreground (in the background
# of this script) and sets SERVER_PID. Upstreams: U_SINK, U_SOURCE, U_ECHO.
# tls and http: TCP ports P_UP -> sink, P_DOWN -> source, P_RR -> echo (tls only).
# ds: unix sockets S_UP -> sink, S_DOWN -> source.

WHARF_TLS="security = \"tls\"; $(wharf_tls_settings)"
WHARF_HTTP='tcpSettings = { header = { type = "http"; }; };'

start_tls_wharf() { wharf_start "network = \"tcp\"; $WHARF_TLS" up down rr; }
start_http_wharf() { wharf_start "network = \"tcp\"; $WHARF_HTTP" up down; }
start_ds_wharf() {
    wharf_conf \
        "{ tag = \"up\"; upstream = \"$HOST:$U_SINK\";
    streamSettings = { network = \"ds\"; dsSettings = { path = \"$S_UP\"; }; }; }" \
        "{ tag = \"down\"; upstream = \"$HOST:$U_SOURCE\";
    streamSettings = { network = \"ds\"; dsSettings = { path = \"$S_DOWN\"; }; }; }"
    wharf_run
}

# does this build accept header type "http"? sets HTTP_NOTE when not
HTTP_NOTE=""
wharf_http_supported() {
    local d=$WORK/http-probe out
    mkdir -p "$d"
    cat >"$d/wharf.conf" <<EOF
daemon = false;
pid = "wharf.pid";
error_log = "error.log";
listeners = (
  { tag = "probe"; listen = "$HOST"; port = 9; upstream = "$HOST:9";
    streamSettings = { network = "tcp"; $WHARF_HTTP }; }
);
EOF
    if out=$("$WHARF" -t -p "$d" -c "$d/wharf.conf" 2>&1); then
        return 0
    fi
    HTTP_NOTE=$(printf '%s\n' "$out" | grep -m 1 emerg | sed 's/ in [^ ]*:[0-9]*$//')
    [ -n "$HTTP_NOTE" ] || HTTP_NOTE=$(printf '%s\n' "$out" | head -n 1)
    return 1
}

start_tls_nginx() {
    nginx_start " ssl" "ssl_certificate $CERT;" "ssl_certificate_key $KEY;" \
        "ssl_protocols TLSv1.2 TLSv1.3;" "ssl_session_tickets off;"
}

start_tls_haproxy() {
    haproxy_start " ssl crt $WORK/haproxy.pem" "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets"
}

start_tls_v2ray() {
    local ss="{ \"network\": \"tcp\", \"security\": \"tls\", \"tlsSettings\": { \"certificates\": [ { \"certificateFile\": \"$CERT\", \"keyFile\": \"$KEY\" } ] } }"
    v2ray_conf "up $P_UP $U_SINK $ss" "down $P_DOWN $U_SOURCE $ss" "rr $P_RR $U_ECHO $ss"
}

start_ds_v2ray() {
    # the port is required by the inbound but not bound by the domainsocket transport
    v2ray_conf \
        "up $(free_port) $U_SINK { \"network\": \"domainsocket\", \"security\": \"none\", \"dsSettings\": { \"path\": \"$S_UP\", \"abstract\": false, \"padding\": false } }" \
        "down $(free_port) $U_SOURCE { \"network\": \"domainsocket\", \"security\": \"none\", \"dsSettings\": { \"path\": \"$S_DOWN\", \"abstract\": false, \"padding\": false } }"
}

start_http_v2ray() {
    local ss='{ "network": "tcp", "security": "none", "tcpSettings": { "header": { "type": "http" } } }'
    v2ray_conf "up $P_UP $U_SINK $ss" "down $P_DOWN $U_SOURCE $ss"
}

# ------------------------------------------------------------------ run

say "wharf TLS / domainsocket / tcp-http-header benchmark"
say "command: BULK_BYTES=$BULK_BYTES BULK_REPEAT=$BULK_REPEAT V2RAY_BULK_BYTES=$V2RAY_BULK_BYTES HS_SECONDS=$HS_SECONDS HS_CONCURRENCY=$HS_CONCURRENCY IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" PARTS=\"$PARTS\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS bench/tls.sh${*:+ $*}"
machine_header aes
say "  client: loadgen + $(openssl version | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 / unix sockets only; wharf worker_processes=1, nginx worker_processes 1, haproxy nbthread 1, v2ray GOMAXPROCS=$V2RAY_GOMAXPROCS"
say "tls: self-signed ECDSA P-256 certificate; client TLS 1.3 TLS_AES_128_GCM_SHA256, full handshakes (no session cache, no tickets); servers: session tickets off"
say ""

has_part tls && has_peer nginx && { nginx_stream_module ssl || exit 1; }

declare -A R   # R[part.figure,peer]

# run_part PART PEER
run_part() {
    local part=$1 peer=$2 pid out t0 t1 bytes
    local -a LGOPT EP_UP EP_DOWN EP_RR WAITS BULK_UP BULK_DOWN

    new_case "$part-$peer"
    S_UP=$D/up.sock; S_DOWN=$D/down.sock
    WAITS=("$HOST $U_SINK" "$HOST $U_SOURCE" "$HOST $U_ECHO")
    case $part in
    tls)  LGOPT=(--tls);  EP_UP=("$HOST" "$P_UP"); EP_DOWN=("$HOST" "$P_DOWN"); EP_RR=("$HOST" "$P_RR")
          WAITS+=("$HOST $P_UP" "$HOST $P_DOWN" "$HOST $P_RR") ;;
    ds)   LGOPT=();       EP_UP=("unix:$S_UP" 0); EP_DOWN=("unix:$S_DOWN" 0)
          WAITS+=("unix:$S_UP 0" "unix:$S_DOWN 0") ;;
    http) LGOPT=(--http); EP_UP=("$HOST" "$P_UP"); EP_DOWN=("$HOST" "$P_DOWN")
          WAITS+=("$HOST $P_UP" "$HOST $P_DOWN") ;;
    esac

    if ! "start_${part}_$peer"; then
        err "$part/$peer: cannot start"; stop_pids "${LGPIDS[@]}"; return 1
    fi
    pid=$SERVER_PID
    started "$pid"
    if ! wait_ready "$part/$peer: %s not ready (server %s); its output:" "${WAITS[@]}"; then
        stop_pids "$pid" "${LGPIDS[@]}"
        return 1
    fi
    sleep 0.3
    say "== $part: $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"

    bytes=$BULK_BYTES
    [ "$peer" = v2ray ] && bytes=$V2RAY_BULK_BYTES
    BULK_UP=("${LGOPT[@]}" bulk-up "${EP_UP[@]}"); BULK_DOWN=("${LGOPT[@]}" bulk-down "${EP_DOWN[@]}")

    # warm-up: a short transfer each way
    timeout 60 "$LG" "${BULK_UP[@]}" 16m >/dev/null
    timeout 60 "$LG" "${BULK_DOWN[@]}" 16m >/dev/null

    # bulk up and down (BULK_REPEAT runs each way, median), with the relay's CPU time
    bulk_pair "$part." "$part/$peer" "$bytes"
    say "   bulk median: up ${R[$part.up,$peer]:--} MiB/s, down ${R[$part.down,$peer]:--} MiB/s; relay cpu s/GiB: up ${R[$part.cpuup,$peer]:--}, down ${R[$part.cpudown,$peer]:--}, both ${R[$part.cpu,$peer]:--}"

    if [ "$part" = tls ]; then
        # memory per idle TLS stream (handshake done, one byte echoed, then idle)
        sleep 0.5
        idle_rss 1200 "$D/idle.out" : --tls idle "${EP_RR[@]}" "$IDLE_N" "$IDLE_HOLD" ||
            err "$part/$peer: idle failed: $(cat "$D/idle.out")"
        if [ -n "$RSS1" ]; then
            R[tls.idle,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / $IDLE_N")
            say "   idle: $IDLE_N TLS streams, rss $RSS0 -> $RSS1 KiB: ${R[tls.idle,$peer]} KiB/stream"
        else
            R[tls.idle,$peer]=""
        fi
        sleep 0.5

        # full TLS handshakes per second: connect + handshake + 64 B echo + close
        t0=$(cpu_ticks "$pid")
        out=$(timeout $(( HS_SECONDS + 60 )) "$LG" --tls connrate "${EP_RR[@]}" "$HS_SECONDS" "$HS_CONCURRENCY") ||
            err "$part/$peer: handshake rate failed"
        t1=$(cpu_ticks "$pid")
        say "   $out"
        R[tls.hs,$peer]=$(printf '%s\n' "$out" | kv cps)
        local okn
        okn=$(printf '%s\n' "$out" | kv ok)
        if [ -n "$okn" ] && [ "$okn" -gt 0 ]; then
            R[tls.hscpu,$peer]=$(calc '%.1f' "($t1 - $t0) / $CLK_TCK * 1000000 / $okn")
            say "   handshakes: relay cpu ${R[tls.hscpu,$peer]} us/handshake, client cpu $(printf '%s\n' "$out" | kv client_cpu_us) us/handshake (both share nproc=$(nproc) cores)"
        else
            R[tls.hscpu,$peer]=""
        fi
    fi

    stop_pids "$pid"
    stop_pids "${LGPIDS[@]}"
    return 0
}

# peers of each part
TLS_PEERS="" DS_PEERS="" HTTP_PEERS=""
if has_part tls; then TLS_PEERS=$PEERS; fi
if has_part ds; then
    for p in wharf v2ray; do has_peer $p && DS_PEERS="$DS_PEERS $p"; done
fi
HTTP_SKIPPED=""
if has_part http; then
    if has_peer wharf && ! wharf_http_supported; then
        HTTP_SKIPPED="this build of wharf refuses tcpSettings.header.type \"http\" (objs/wharf -t: $HTTP_NOTE)"
    else
        for p in wharf v2ray; do has_peer $p && HTTP_PEERS="$HTTP_PEERS $p"; done
    fi
fi

for peer in $TLS_PEERS; do run_part tls "$peer" || err "tls/$peer: skipped"; done
for peer in $DS_PEERS; do run_part ds "$peer" || err "ds/$peer: skipped"; done
if [ -n "$HTTP_SKIPPED" ]; then
    say "== http: skipped: $HTTP_SKIPPED"
fi
for peer in $HTTP_PEERS; do run_part http "$peer" || err "http/$peer: skipped"; done

# ----------------------------------------------------------------- tables
NAME_W=24 CELL_W=11
fig_name() {
    case $1 in
    up) echo "bulk up MiB/s" ;; down) echo "bulk down MiB/s" ;; cpuup) echo "cpu up s/GiB" ;;
    cpudown) echo "cpu down s/GiB" ;; cpu) echo "cpu s/GiB" ;; hs) echo "handshakes/s" ;;
    hscpu) echo "cpu us/handshake" ;; idle) echo "idle KiB/stream" ;;
    esac
}

if [ -n "$TLS_PEERS" ]; then
    say ""
    say "tcp+TLS"
    fmt_row figure wharf nginx haproxy v2ray w/nginx w/haproxy w/v2ray
    for f in up down cpuup cpudown cpu hs hscpu idle; do
        fmt_row "$(fig_name $f)" "$(val tls.$f wharf "$TLS_PEERS")" "$(val tls.$f nginx "$TLS_PEERS")" \
            "$(val tls.$f haproxy "$TLS_PEERS")" "$(val tls.$f v2ray "$TLS_PEERS")" \
            "$(ratio tls.$f nginx "$TLS_PEERS")" "$(ratio tls.$f haproxy "$TLS_PEERS")" \
            "$(ratio tls.$f v2ray "$TLS_PEERS")"
    done
fi
for part in ds http; do
    case $part in ds) pl=$DS_PEERS; title="domainsocket" ;; http) pl=$HTTP_PEERS; title="tcp + http header" ;; esac
    [ -n "$pl" ] || continue
    say ""
    say "$title"
    fmt_row figure wharf v2ray w/v2ray
    for f in up down cpuup cpudown cpu; do
        fmt_row "$(fig_name $f)" "$(val $part.$f wharf "$pl")" "$(val $part.$f v2ray "$pl")" \
            "$(ratio $part.$f v2ray "$pl")"
    done
done
if [ -n "$HTTP_SKIPPED" ]; then
    say ""
    say "tcp + http header: skipped ($HTTP_SKIPPED)"
fi

say ""
say "targets:"
# target NAME PART.FIG OP REF_PEER FACTOR PEERLIST  (wharf FIG OP FACTOR*REF); REF_PEER "-" = constant
TARGET_W=36
if has_part tls; then
    target "tls bulk up >= haproxy" tls.up ge haproxy 1 "$TLS_PEERS"
    target "tls bulk down >= haproxy" tls.down ge haproxy 1 "$TLS_PEERS"
    target "tls handshakes/s >= haproxy" tls.hs ge haproxy 1 "$TLS_PEERS"
    target "tls idle <= 8 KiB/stream" tls.idle le - 8 "$TLS_PEERS"
fi
if has_part ds; then
    target "ds bulk up >= 1.5 x v2ray" ds.up ge v2ray 1.5 "$DS_PEERS"
    target "ds bulk down >= 1.5 x v2ray" ds.down ge v2ray 1.5 "$DS_PEERS"
fi
if has_part http; then
    if [ -n "$HTTP_SKIPPED" ]; then
        printf '  %-36s skipped (wharf build without header type "http")\n' "http header: ratio only"
    else
        printf '  %-36s no target (w/v2ray up %s, down %s)\n' "http header: ratio only" \
            "$(ratio http.up v2ray "$HTTP_PEERS")" "$(ratio http.down v2ray "$HTTP_PEERS")"
    fi
fi
exit 0
