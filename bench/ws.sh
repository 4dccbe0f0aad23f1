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
#        WS_FRAME          largest frame payload loadgen sends in B, one write each (default 2048:
#                          what the V2Ray 4.34 client sends, one frame per write)
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
# client sends what the V2Ray client sends: masked binary frames of WS_FRAME bytes, one write (one
# TLS record) each, so a server's per-frame and per-record costs count in B as they do in A.
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

set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${WHARF_SHARED:-$ROOT/../shared}
BULK_BYTES=${BULK_BYTES:-536870912}
VIA_BULK_BYTES=${VIA_BULK_BYTES:-268435456}
BULK_REPEAT=${BULK_REPEAT:-3}
RR_COUNT=${RR_COUNT:-10000}
IDLE_N=${IDLE_N:-1000}
IDLE_HOLD=${IDLE_HOLD:-3}
WS_FRAME=${WS_FRAME:-2048}
PEERS=${PEERS:-wharf v2ray}
TRANSPORTS=${TRANSPORTS:-ws ws-tls}
MODES=${MODES:-via direct}
V2RAY_GOMAXPROCS=${V2RAY_GOMAXPROCS:-1}
CLIENT_GOMAXPROCS=${CLIENT_GOMAXPROCS:-$(nproc)}
ALL_PEERS="wharf v2ray"
ALL_TRANSPORTS="ws ws-tls"
ALL_MODES="via direct"
HOST=127.0.0.1
WS_PATH=/wharf-ws   # the fixtures' path

# "2g", "512m", "64k" or plain bytes
to_bytes() {
    case $1 in
    *[kK]) echo $(( ${1%?} << 10 )) ;; *[mM]) echo $(( ${1%?} << 20 )) ;;
    *[gG]) echo $(( ${1%?} << 30 )) ;; *) echo $(( $1 )) ;;
    esac
}
BULK_BYTES=$(to_bytes "$BULK_BYTES") && VIA_BULK_BYTES=$(to_bytes "$VIA_BULK_BYTES") &&
    WS_FRAME=$(to_bytes "$WS_FRAME") || exit 1
CLK_TCK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*"; }
err() { printf 'ws.sh: %s\n' "$*" >&2; }

check_list() {   # check_list WHAT "LIST" "KNOWN"
    local p
    for p in $2; do
        case " $3 " in *" $p "*) ;; *) err "unknown $1 '$p' (known: $3)"; exit 1 ;; esac
    done
}
check_list peer "$PEERS" "$ALL_PEERS"
check_list transport "$TRANSPORTS" "$ALL_TRANSPORTS"
check_list mode "$MODES" "$ALL_MODES"
in_list() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

WHARF=$ROOT/objs/wharf
if in_list "$PEERS" wharf && [ ! -x "$WHARF" ]; then
    err "objs/wharf not found: run ./configure && make at the repository root first"
    err "(or set PEERS=v2ray to benchmark only v2ray)"
    exit 1
fi
if ! command -v v2ray >/dev/null 2>&1; then
    err "v2ray is not installed (apt-get install v2ray): it is the client in A and a server"; exit 1
fi
for f in render.sh mkcert.sh cases/ws/client.json cases/ws/server.json cases/ws-tls/client.json \
         cases/ws-tls/server.json; do
    if [ ! -r "$SHARED/interop/$f" ]; then
        err "$SHARED/interop/$f not found (set WHARF_SHARED to the folder holding interop/)"; exit 1
    fi
done
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then err "$PY not found (apt-get install python3)"; exit 1; fi
if ! command -v openssl >/dev/null 2>&1; then
    err "openssl not found (apt-get install openssl)"; exit 1
fi

# file descriptors: clients, relays (2 per stream) and upstreams all inherit this
hard=$(ulimit -Hn)
want=$(( IDLE_N * 4 + 4096 ))
[ "$want" -lt 65536 ] && want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d -t wharf-ws.XXXXXX) || exit 1
chmod 755 "$WORK"   # workers may run as an unprivileged user
STARTED=""
cleanup() {
    for pid in $STARTED; do kill "$pid" 2>/dev/null; done
    for pid in $STARTED; do wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LG=$WORK/loadgen
if ! cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -DLOADGEN_TLS -o "$LG" "$ROOT/bench/loadgen.c" \
        -lssl -lcrypto; then
    err "cannot build bench/loadgen.c with OpenSSL (apt-get install libssl-dev)"
    exit 1
fi

# the fixtures' certificate helper; the key stays in $WORK
if ! sh "$SHARED/interop/mkcert.sh" "$WORK/pki" >/dev/null 2>"$WORK/mkcert.err"; then
    err "cannot make a certificate:"; cat "$WORK/mkcert.err" >&2; exit 1
fi
chmod 755 "$WORK/pki"
chmod 644 "$WORK/pki/cert.pem" "$WORK/pki/key.pem"   # readable by unprivileged workers; dies with the run
CERT=$WORK/pki/cert.pem
KEY=$WORK/pki/key.pem

# ---------------------------------------------------------------- helpers

# free TCP port below the ephemeral range, not listening and not used before in this run
USED_PORTS=" "
free_port() {
    local p listening
    listening=$(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u | tr '\n' ' ')
    while :; do
        p=$(( 20000 + RANDOM % 12000 ))
        case " $listening $USED_PORTS " in *" $p "*) continue ;; esac
        USED_PORTS="$USED_PORTS$p "
        echo "$p"
        return
    done
}

# a pid and all its descendants
tree_pids() {
    local c
    echo "$1"
    for c in $(pgrep -P "$1" 2>/dev/null); do tree_pids "$c"; done
}

# utime+stime (clock ticks) summed over the process tree
cpu_ticks() {
    local pid s sum=0
    for pid in $(tree_pids "$1"); do
        s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        s=${s##*) }           # the command name may contain spaces and parentheses
        set -- $s             # $1 = state (field 3): utime is field 14, stime field 15
        sum=$(( sum + ${12} + ${13} ))
    done
    echo "$sum"
}

# VmRSS (KiB) summed over the process tree
rss_kib() {
    local pid sum=0 v
    for pid in $(tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        sum=$(( sum + ${v:-0} ))
    done
    echo "$sum"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -n 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# render TRANSPORT client|server OUT, with SERVER_PORT, UPSTREAM_PORT, LOCAL_PORT in the environment
render() {
    SERVER_HOST=$HOST CERT_FILE=$CERT KEY_FILE=$KEY CA_FILE=$CERT TLS_SERVER_NAME=localhost \
        sh "$SHARED/interop/render.sh" "$SHARED/interop/cases/$1/$2.json" "$3"
}

# merge_v2ray client|server OUT TAG=FILE...: one v2ray process for the three renderings
merge_v2ray() {
    "$PY" - "$@" <<'EOF'
import json, sys
role, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
conf = None
inbounds, outbounds, rules = [], [], []
for spec in specs:
    tag, path = spec.split("=", 1)
    with open(path) as f:
        c = json.load(f)
    if conf is None:
        conf = c
    for ib in c["inbounds"]:
        ib["tag"] = ib["tag"] + "-" + tag
        inbounds.append(ib)
    if role == "client":
        for ob in c["outbounds"]:
            rules.append({"type": "field", "inboundTag": [ib["tag"]],
                          "outboundTag": ob["tag"] + "-" + tag})
            ob["tag"] = ob["tag"] + "-" + tag
            outbounds.append(ob)
conf["inbounds"] = inbounds
if role == "client":
    conf["outbounds"] = outbounds
    conf["routing"] = {"domainStrategy": "AsIs", "rules": rules}
with open(out, "w") as f:
    json.dump(conf, f, indent=2)
EOF
}

# --------------------------------------------------------------- servers
# start_PEER TRANSPORT writes its config into $D, starts the ws server in the foreground (in the
# background of this script) and sets SERVER_PID. Ports P_UP -> U_SINK, P_DOWN -> U_SOURCE,
# P_RR -> U_ECHO.

start_wharf() {
    local tls="" tag port up first=1
    [ "$1" = ws-tls ] && tls="tlsSettings = { certificates = ( { certificateFile = \"$CERT\"; keyFile = \"$KEY\"; } ); };"
    {
        printf 'daemon = false;\nworker_processes = 1;\nuser = "nobody";\npid = "wharf.pid";\n'
        printf 'error_log = "error.log";\nlog_level = "error";\nlisteners = (\n'
        for tag in up down rr; do
            case $tag in
            up) port=$P_UP; up=$U_SINK ;; down) port=$P_DOWN; up=$U_SOURCE ;; rr) port=$P_RR; up=$U_ECHO ;;
            esac
            [ $first = 1 ] || printf ',\n'
            first=0
            printf '  { tag = "%s"; listen = "%s"; port = %s; upstream = "%s:%s";\n' "$tag" $HOST "$port" $HOST "$up"
            printf '    streamSettings = { network = "ws"; security = "%s"; wsSettings = { path = "%s"; };\n' \
                "$([ -n "$tls" ] && echo tls || echo none)" "$WS_PATH"
            [ -n "$tls" ] && printf '      %s\n' "$tls"
            printf '    }; }'
        done
        printf '\n);\n'
    } >"$D/wharf.conf"
    if ! "$WHARF" -t -p "$D" -c "$D/wharf.conf" >"$D/test.out" 2>&1; then
        err "wharf -t failed:"; cat "$D/test.out" >&2; return 1
    fi
    "$WHARF" -p "$D" -c "$D/wharf.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

start_v2ray() {
    SERVER_PORT=$P_UP UPSTREAM_PORT=$U_SINK render "$1" server "$D/server-up.json" &&
    SERVER_PORT=$P_DOWN UPSTREAM_PORT=$U_SOURCE render "$1" server "$D/server-down.json" &&
    SERVER_PORT=$P_RR UPSTREAM_PORT=$U_ECHO render "$1" server "$D/server-rr.json" &&
    merge_v2ray server "$D/server.json" up="$D/server-up.json" down="$D/server-down.json" \
        rr="$D/server-rr.json" || return 1
    GOMAXPROCS=$V2RAY_GOMAXPROCS v2ray -config "$D/server.json" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# the V2Ray client of A: L_UP -> P_UP, L_DOWN -> P_DOWN, L_RR -> P_RR; sets CLIENT_PID
start_client() {
    LOCAL_PORT=$L_UP SERVER_PORT=$P_UP render "$1" client "$D/client-up.json" &&
    LOCAL_PORT=$L_DOWN SERVER_PORT=$P_DOWN render "$1" client "$D/client-down.json" &&
    LOCAL_PORT=$L_RR SERVER_PORT=$P_RR render "$1" client "$D/client-rr.json" &&
    merge_v2ray client "$D/client.json" up="$D/client-up.json" down="$D/client-down.json" \
        rr="$D/client-rr.json" || return 1
    GOMAXPROCS=$CLIENT_GOMAXPROCS v2ray -config "$D/client.json" >"$D/client.stdout" 2>"$D/client.stderr" &
    CLIENT_PID=$!
}

version_of() {
    case $1 in
    wharf) "$WHARF" -v 2>&1 | head -n 1 ;;
    v2ray) v2ray -version 2>&1 | head -n 1 | cut -d' ' -f1-2,5- ;;
    esac
}

# ------------------------------------------------------------------ run

say "wharf WebSocket (ws, ws+TLS) benchmark: wharf vs v2ray as the ws server"
say "command: BULK_BYTES=$BULK_BYTES VIA_BULK_BYTES=$VIA_BULK_BYTES BULK_REPEAT=$BULK_REPEAT RR_COUNT=$RR_COUNT IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD WS_FRAME=$WS_FRAME PEERS=\"$PEERS\" TRANSPORTS=\"$TRANSPORTS\" MODES=\"$MODES\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS CLIENT_GOMAXPROCS=$CLIENT_GOMAXPROCS bench/ws.sh${*:+ $*}"
say "machine: nproc=$(nproc) kernel=$(uname -sr) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)\" aes=$(grep -qw aes /proc/cpuinfo && echo yes || echo no) ulimit-n=$(ulimit -n)"
for p in $PEERS; do say "  $p: $(version_of "$p")"; done
in_list "$PEERS" v2ray || say "  v2ray (client): $(version_of v2ray)"
say "  loadgen: $(openssl version | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 only; wharf worker_processes=1; v2ray server GOMAXPROCS=$V2RAY_GOMAXPROCS; v2ray client (A) GOMAXPROCS=$CLIENT_GOMAXPROCS; ws path $WS_PATH"
say "A (via): loadgen plain TCP -> v2ray client -> server -> upstream; B (direct): loadgen --ws [--tls] -> server -> upstream"
say "cpu = utime+stime of the server process(es) only (wharf: master + worker; v2ray: one process) per GiB relayed"
say ""

declare -A R   # R[TRANSPORT.MODE.FIG,PEER]

# run_case TRANSPORT MODE PEER
run_case() {
    local tr=$1 mode=$2 peer=$3 pid cpid="" lgpids out t0 t1 c0 c1 bytes rss0 rss1 i ep k
    local -a LGOPT EP_UP EP_DOWN EP_RR WAITS
    k=$tr.$mode

    D=$WORK/$tr-$mode-$peer
    mkdir -p "$D"
    chmod 755 "$D"
    U_SINK=$(free_port); U_SOURCE=$(free_port); U_ECHO=$(free_port)
    P_UP=$(free_port); P_DOWN=$(free_port); P_RR=$(free_port)
    WAITS=("$U_SINK" "$U_SOURCE" "$U_ECHO" "$P_UP" "$P_DOWN" "$P_RR")
    if [ "$mode" = via ]; then
        L_UP=$(free_port); L_DOWN=$(free_port); L_RR=$(free_port)
        LGOPT=()
        EP_UP=("$HOST" "$L_UP"); EP_DOWN=("$HOST" "$L_DOWN"); EP_RR=("$HOST" "$L_RR")
    else
        LGOPT=(--ws "$WS_PATH" --ws-frame "$WS_FRAME")
        [ "$tr" = ws-tls ] && LGOPT+=(--tls)
        EP_UP=("$HOST" "$P_UP"); EP_DOWN=("$HOST" "$P_DOWN"); EP_RR=("$HOST" "$P_RR")
    fi

    "$LG" sink "$U_SINK" 2>>"$D/upstreams.err" & lgpids=$!
    "$LG" source "$U_SOURCE" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    "$LG" echo "$U_ECHO" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    STARTED="$STARTED $lgpids"

    stop() {
        [ -n "$cpid" ] && kill "$cpid" 2>/dev/null
        kill "$pid" $lgpids 2>/dev/null
        [ -n "$cpid" ] && wait "$cpid" 2>/dev/null
        wait "$pid" $lgpids 2>/dev/null
    }
    if ! "start_$peer" "$tr"; then
        err "$k/$peer: cannot start"; kill $lgpids 2>/dev/null; wait $lgpids 2>/dev/null; return 1
    fi
    pid=$SERVER_PID
    STARTED="$STARTED $pid"
    if [ "$mode" = via ]; then
        if ! start_client "$tr"; then
            err "$k/$peer: cannot start the v2ray client"; stop; return 1
        fi
        cpid=$CLIENT_PID
        STARTED="$STARTED $cpid"
        WAITS+=("$L_UP" "$L_DOWN" "$L_RR")
    fi
    for ep in "${WAITS[@]}"; do
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null && { [ -z "$cpid" ] || kill -0 "$cpid" 2>/dev/null; } ||
                { i=dead; break; }
            "$LG" wait $HOST "$ep" 0 2>/dev/null && break
            sleep 0.1
        done
        if [ "$i" = dead ] || [ "$i" = 100 ]; then
            err "$k/$peer: port $ep not ready (${i/100/not listening}); output:"
            tail -n 20 "$D/stderr" "$D/error.log" "$D/client.stderr" >&2 2>/dev/null
            stop; return 1
        fi
    done
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
    rss0=$(rss_kib "$pid")
    timeout $(( IDLE_HOLD + 120 )) "$LG" "${LGOPT[@]}" idle "${EP_RR[@]}" "$IDLE_N" "$IDLE_HOLD" \
        >"$D/idle.out" 2>&1 &
    i=$!
    rss1=""
    for _ in $(seq 1 1200); do
        if grep -q established "$D/idle.out" 2>/dev/null; then
            sleep 1
            rss1=$(rss_kib "$pid")
            break
        fi
        kill -0 "$i" 2>/dev/null || break
        sleep 0.1
    done
    wait "$i" || err "$k/$peer: idle failed: $(cat "$D/idle.out")"
    if [ -n "$rss1" ]; then
        R[$k.idle,$peer]=$(calc '%.2f' "($rss1 - $rss0) / $IDLE_N")
        say "   idle: $IDLE_N streams, server rss $rss0 -> $rss1 KiB: ${R[$k.idle,$peer]} KiB/stream"
    else
        R[$k.idle,$peer]=""
    fi
    sleep 1   # let the idle streams close everywhere

    bytes=$BULK_BYTES
    [ "$mode" = via ] && bytes=$VIA_BULK_BYTES

    # warm-up: a short transfer each way
    timeout 60 "$LG" "${LGOPT[@]}" --ack bulk-up "${EP_UP[@]}" 16m >/dev/null || err "$k/$peer: warm-up up failed"
    timeout 60 "$LG" "${LGOPT[@]}" bulk-down "${EP_DOWN[@]}" 16m >/dev/null || err "$k/$peer: warm-up down failed"

    # bulk up and down (BULK_REPEAT runs each way, median), with the server's (and client's) CPU time
    local dir vals ticks cticks secs n ok
    for dir in up down; do
        vals=""; ticks=0; cticks=0; secs=0; n=0; ok=1
        for i in $(seq 1 "$BULK_REPEAT"); do
            t0=$(cpu_ticks "$pid")
            [ -n "$cpid" ] && c0=$(cpu_ticks "$cpid")
            if [ $dir = up ]; then
                out=$(timeout 120 "$LG" "${LGOPT[@]}" --ack bulk-up "${EP_UP[@]}" "$bytes") ||
                    { err "$k/$peer: bulk-up failed"; ok=0; }
            else
                out=$(timeout 120 "$LG" "${LGOPT[@]}" bulk-down "${EP_DOWN[@]}" "$bytes") ||
                    { err "$k/$peer: bulk-down failed"; ok=0; }
            fi
            sleep 0.1
            t1=$(cpu_ticks "$pid")
            [ -n "$cpid" ] && { c1=$(cpu_ticks "$cpid"); cticks=$(( cticks + c1 - c0 )); }
            say "   $out"
            ticks=$(( ticks + t1 - t0 )); n=$(( n + 1 ))
            vals="$vals $(printf '%s\n' "$out" | kv mibps)"
            secs=$(calc '%.4f' "$secs + 0$(printf '%s\n' "$out" | kv seconds)")
        done
        R[$k.$dir,$peer]=""; R[$k.cpu$dir,$peer]=""; R[$k.ccpu$dir,$peer]=""; R[$k.cbusy$dir,$peer]=""
        if [ $ok = 1 ]; then
            R[$k.$dir,$peer]=$(median $vals)
            R[$k.cpu$dir,$peer]=$(calc '%.3f' "$ticks / $CLK_TCK / ($n * $bytes / 1073741824)")
            if [ -n "$cpid" ]; then
                R[$k.ccpu$dir,$peer]=$(calc '%.3f' "$cticks / $CLK_TCK / ($n * $bytes / 1073741824)")
                R[$k.cbusy$dir,$peer]=$(calc '%.2f' "$cticks / $CLK_TCK / $secs")
            fi
        fi
    done
    local f
    for f in cpu ccpu; do
        if [ -n "${R[$k.${f}up,$peer]}" ] && [ -n "${R[$k.${f}down,$peer]}" ]; then
            R[$k.$f,$peer]=$(calc '%.3f' "(${R[$k.${f}up,$peer]} + ${R[$k.${f}down,$peer]}) / 2")
        else
            R[$k.$f,$peer]=""
        fi
    done
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
fmt_row() { printf '%-26s' "$1"; shift; printf ' %10s' "$@"; printf '\n'; }
val() { local v=${R[$1,$2]:-}; if in_list "$PEERS" "$2" && [ -n "$v" ]; then echo "$v"; else echo "-"; fi; }
ratio() {   # ratio KEY: wharf / v2ray
    local a=${R[$1,wharf]:-} b=${R[$1,v2ray]:-}
    if [ -z "$a" ] || [ -z "$b" ] || ! in_list "$PEERS" wharf || ! in_list "$PEERS" v2ray; then echo "-"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'
}
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
                row+=("$(val $tr.$mode.$f wharf)" "$(val $tr.$mode.$f v2ray)" "$(ratio $tr.$mode.$f)")
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
# target NAME TRANSPORT FIG FACTOR: wharf FIG <= FACTOR x v2ray FIG, in SRC[TRANSPORT]; the other
# mode's verdict for reference
target() {
    local name=$1 tr=$2 f=$3 k=$4 mode res="" other="" m a b r
    mode=${SRC[$tr]}
    for m in via direct; do
        in_list "$MODES" "$m" || continue
        a=${R[$tr.$m.$f,wharf]:-}; b=${R[$tr.$m.$f,v2ray]:-}
        if [ -z "$a" ] || [ -z "$b" ] || ! in_list "$PEERS" wharf || ! in_list "$PEERS" v2ray; then
            r="n/a"
        else
            b=$(awk -v b="$b" -v k="$k" 'BEGIN { printf "%.6g", b * k }')
            r=$(awk -v a="$a" -v b="$b" 'BEGIN { print (a <= b) ? "PASS" : "MISS" }')
            r="$r (wharf $a, limit $b)"
        fi
        if [ "$m" = "$mode" ]; then res=$r; else other="; $([ $m = via ] && echo A || echo B): $r"; fi
    done
    printf '  %-40s %s: %s%s\n' "$name" "$([ "$mode" = via ] && echo A || echo B)" "$res" "$other"
}
for tr in $TRANSPORTS; do
    target "$tr server cpu s/GiB <= 1/3 x v2ray" "$tr" cpu 0.333333
    target "$tr rr p99 <= 0.7 x v2ray" "$tr" p99 0.7
    target "$tr idle KiB/stream <= 1/10 x v2ray" "$tr" idle 0.1
done
exit 0
