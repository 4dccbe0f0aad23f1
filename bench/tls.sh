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

set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
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
HOST=127.0.0.1

# "2g", "512m", "64k" or plain bytes
to_bytes() {
    case $1 in
    *[kK]) echo $(( ${1%?} << 10 )) ;; *[mM]) echo $(( ${1%?} << 20 )) ;;
    *[gG]) echo $(( ${1%?} << 30 )) ;; *) echo $(( $1 )) ;;
    esac
}
BULK_BYTES=$(to_bytes "$BULK_BYTES") && V2RAY_BULK_BYTES=$(to_bytes "$V2RAY_BULK_BYTES") || exit 1
CLK_TCK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*"; }
err() { printf 'tls.sh: %s\n' "$*" >&2; }

for p in $PEERS; do
    case " $ALL_PEERS " in *" $p "*) ;; *) err "unknown peer '$p' (known: $ALL_PEERS)"; exit 1 ;; esac
done
for p in $PARTS; do
    case " $ALL_PARTS " in *" $p "*) ;; *) err "unknown part '$p' (known: $ALL_PARTS)"; exit 1 ;; esac
done
has_peer() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }
has_part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

WHARF=$ROOT/objs/wharf
if has_peer wharf && [ ! -x "$WHARF" ]; then
    err "objs/wharf not found: run ./configure && make at the repository root first"
    err "(or set PEERS to benchmark only the others, e.g. PEERS=\"nginx haproxy v2ray\")"
    exit 1
fi
for p in nginx haproxy v2ray; do
    if has_peer $p && ! command -v $p >/dev/null 2>&1; then
        err "$p is not installed (apt-get install $p), or drop it from PEERS"
        exit 1
    fi
done
if ! command -v openssl >/dev/null 2>&1; then
    err "openssl not found (apt-get install openssl)"; exit 1
fi

# file descriptors: clients, relay (2 per stream) and upstreams all inherit this
hard=$(ulimit -Hn)
want=$(( IDLE_N * 4 + 4096 ))
[ "$want" -lt 65536 ] && want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d -t wharf-tls.XXXXXX) || exit 1
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

# self-signed P-256 certificate (as the interop fixtures' mkcert.sh); the key stays in $WORK
CERT=$WORK/cert.pem
KEY=$WORK/key.pem
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 30 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -addext "extendedKeyUsage=serverAuth" -keyout "$KEY" -out "$CERT" 2>"$WORK/openssl.err"; then
    err "cannot make a certificate:"; cat "$WORK/openssl.err" >&2; exit 1
fi
chmod 644 "$CERT" "$KEY"   # readable by unprivileged workers; the directory dies with the run
cat "$CERT" "$KEY" >"$WORK/haproxy.pem"

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

# --------------------------------------------------------------- servers
# start_PART_PEER writes its config into $D, starts the server in the foreground (in the background
# of this script) and sets SERVER_PID. Upstreams: U_SINK, U_SOURCE, U_ECHO.
# tls and http: TCP ports P_UP -> sink, P_DOWN -> source, P_RR -> echo (tls only).
# ds: unix sockets S_UP -> sink, S_DOWN -> source.

wharf_run() {
    if ! "$WHARF" -t -p "$D" -c "$D/wharf.conf" >"$D/test.out" 2>&1; then
        err "wharf -t failed:"; cat "$D/test.out" >&2; return 1
    fi
    "$WHARF" -p "$D" -c "$D/wharf.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

wharf_conf() {   # wharf_conf LISTENERS...
    local l first=1
    {
        printf 'daemon = false;\nworker_processes = 1;\nuser = "nobody";\npid = "wharf.pid";\n'
        printf 'error_log = "error.log";\nlog_level = "error";\nlisteners = (\n'
        for l in "$@"; do
            [ $first = 1 ] || printf ',\n'
            first=0
            printf '  %s' "$l"
        done
        printf '\n);\n'
    } >"$D/wharf.conf"
}

WHARF_TLS="security = \"tls\"; tlsSettings = { certificates = ( { certificateFile = \"$CERT\"; keyFile = \"$KEY\"; } ); };"
WHARF_HTTP='tcpSettings = { header = { type = "http"; }; };'

start_tls_wharf() {
    wharf_conf \
        "{ tag = \"up\"; listen = \"$HOST\"; port = $P_UP; upstream = \"$HOST:$U_SINK\";
    streamSettings = { network = \"tcp\"; $WHARF_TLS }; }" \
        "{ tag = \"down\"; listen = \"$HOST\"; port = $P_DOWN; upstream = \"$HOST:$U_SOURCE\";
    streamSettings = { network = \"tcp\"; $WHARF_TLS }; }" \
        "{ tag = \"rr\"; listen = \"$HOST\"; port = $P_RR; upstream = \"$HOST:$U_ECHO\";
    streamSettings = { network = \"tcp\"; $WHARF_TLS }; }"
    wharf_run
}

start_ds_wharf() {
    wharf_conf \
        "{ tag = \"up\"; upstream = \"$HOST:$U_SINK\";
    streamSettings = { network = \"ds\"; dsSettings = { path = \"$S_UP\"; }; }; }" \
        "{ tag = \"down\"; upstream = \"$HOST:$U_SOURCE\";
    streamSettings = { network = \"ds\"; dsSettings = { path = \"$S_DOWN\"; }; }; }"
    wharf_run
}

start_http_wharf() {
    wharf_conf \
        "{ tag = \"up\"; listen = \"$HOST\"; port = $P_UP; upstream = \"$HOST:$U_SINK\";
    streamSettings = { network = \"tcp\"; $WHARF_HTTP }; }" \
        "{ tag = \"down\"; listen = \"$HOST\"; port = $P_DOWN; upstream = \"$HOST:$U_SOURCE\";
    streamSettings = { network = \"tcp\"; $WHARF_HTTP }; }"
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

NGINX_LOAD=""
nginx_stream_module() {
    local v mp
    v=$(nginx -V 2>&1)
    case "$v" in
    *--with-stream=dynamic*)
        mp=$(printf '%s\n' "$v" | tr ' ' '\n' | sed -n 's/^--modules-path=//p')
        [ -n "$mp" ] || mp=$(printf '%s\n' "$v" | tr ' ' '\n' | sed -n 's/^--prefix=//p')/modules
        if [ ! -f "$mp/ngx_stream_module.so" ]; then
            err "nginx stream module missing ($mp/ngx_stream_module.so): apt-get install libnginx-mod-stream"
            return 1
        fi
        NGINX_LOAD="load_module $mp/ngx_stream_module.so;" ;;
    *--with-stream*) NGINX_LOAD="" ;;
    *) err "this nginx has no stream module (apt-get install libnginx-mod-stream)"; return 1 ;;
    esac
    case "$v" in
    *--with-stream_ssl_module*) ;;
    *) err "this nginx has no stream ssl module"; return 1 ;;
    esac
}

start_tls_nginx() {
    cat >"$D/nginx.conf" <<EOF
$NGINX_LOAD
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $D/nginx.pid;
error_log $D/error.log error;
events { worker_connections 20000; }
stream {
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
    server { listen $HOST:$P_UP ssl;   proxy_pass $HOST:$U_SINK; }
    server { listen $HOST:$P_DOWN ssl; proxy_pass $HOST:$U_SOURCE; }
    server { listen $HOST:$P_RR ssl;   proxy_pass $HOST:$U_ECHO; }
}
EOF
    nginx -e "$D/error.log" -p "$D" -c "$D/nginx.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

start_tls_haproxy() {
    cat >"$D/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $(( ($(ulimit -n) - 200) / 2 ))
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
listen up
    bind $HOST:$P_UP ssl crt $WORK/haproxy.pem
    server s $HOST:$U_SINK
listen down
    bind $HOST:$P_DOWN ssl crt $WORK/haproxy.pem
    server s $HOST:$U_SOURCE
listen rr
    bind $HOST:$P_RR ssl crt $WORK/haproxy.pem
    server s $HOST:$U_ECHO
EOF
    haproxy -db -f "$D/haproxy.cfg" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# v2ray_conf "TAG PORT UPSTREAM STREAMSETTINGS" ...
v2ray_conf() {
    local inb="" spec tag port up ss
    for spec in "$@"; do
        read -r tag port up ss <<<"$spec"
        [ -n "$inb" ] && inb="$inb,"
        inb="$inb
    { \"tag\": \"$tag\", \"listen\": \"$HOST\", \"port\": $port, \"protocol\": \"dokodemo-door\",
      \"settings\": { \"address\": \"$HOST\", \"port\": $up, \"network\": \"tcp\" },
      \"streamSettings\": $ss }"
    done
    cat >"$D/v2ray.json" <<EOF
{
  "log": { "loglevel": "warning" },
  "inbounds": [ $inb
  ],
  "outbounds": [ { "tag": "upstream", "protocol": "freedom", "settings": {} } ]
}
EOF
    GOMAXPROCS=$V2RAY_GOMAXPROCS v2ray -config "$D/v2ray.json" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
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

version_of() {
    case $1 in
    wharf) "$WHARF" -v 2>&1 | head -n 1 ;;
    nginx) nginx -v 2>&1 | head -n 1 ;;
    haproxy) haproxy -v 2>&1 | head -n 1 | cut -d' ' -f1-3 ;;
    v2ray) v2ray -version 2>&1 | head -n 1 | cut -d' ' -f1-2 ;;
    esac
}

# ------------------------------------------------------------------ run

say "wharf TLS / domainsocket / tcp-http-header benchmark"
say "command: BULK_BYTES=$BULK_BYTES BULK_REPEAT=$BULK_REPEAT V2RAY_BULK_BYTES=$V2RAY_BULK_BYTES HS_SECONDS=$HS_SECONDS HS_CONCURRENCY=$HS_CONCURRENCY IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" PARTS=\"$PARTS\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS bench/tls.sh${*:+ $*}"
say "machine: nproc=$(nproc) kernel=$(uname -sr) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)\" aes=$(grep -qw aes /proc/cpuinfo && echo yes || echo no) ulimit-n=$(ulimit -n)"
for p in $PEERS; do say "  $p: $(version_of "$p")"; done
say "  client: loadgen + $(openssl version | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 / unix sockets only; wharf worker_processes=1, nginx worker_processes 1, haproxy nbthread 1, v2ray GOMAXPROCS=$V2RAY_GOMAXPROCS"
say "tls: self-signed ECDSA P-256 certificate; client TLS 1.3 TLS_AES_128_GCM_SHA256, full handshakes (no session cache, no tickets); servers: session tickets off"
say ""

has_part tls && has_peer nginx && { nginx_stream_module || exit 1; }

declare -A R   # R[part.figure,peer]

# run_part PART PEER
run_part() {
    local part=$1 peer=$2 pid lgpids out t0 t1 bytes rss0 rss1 i p ep lgopt
    local -a EP_UP EP_DOWN EP_RR WAITS

    D=$WORK/$part-$peer
    mkdir -p "$D"
    chmod 755 "$D"
    U_SINK=$(free_port); U_SOURCE=$(free_port); U_ECHO=$(free_port)
    P_UP=$(free_port); P_DOWN=$(free_port); P_RR=$(free_port)
    S_UP=$D/up.sock; S_DOWN=$D/down.sock
    WAITS=("$HOST $U_SINK" "$HOST $U_SOURCE" "$HOST $U_ECHO")
    case $part in
    tls)  lgopt=--tls;  EP_UP=($HOST "$P_UP"); EP_DOWN=($HOST "$P_DOWN"); EP_RR=($HOST "$P_RR")
          WAITS+=("$HOST $P_UP" "$HOST $P_DOWN" "$HOST $P_RR") ;;
    ds)   lgopt="";     EP_UP=("unix:$S_UP" 0); EP_DOWN=("unix:$S_DOWN" 0)
          WAITS+=("unix:$S_UP 0" "unix:$S_DOWN 0") ;;
    http) lgopt=--http; EP_UP=($HOST "$P_UP"); EP_DOWN=($HOST "$P_DOWN")
          WAITS+=("$HOST $P_UP" "$HOST $P_DOWN") ;;
    esac

    "$LG" sink "$U_SINK" 2>>"$D/upstreams.err" & lgpids=$!
    "$LG" source "$U_SOURCE" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    "$LG" echo "$U_ECHO" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    STARTED="$STARTED $lgpids"

    if ! "start_${part}_$peer"; then
        err "$part/$peer: cannot start"; kill $lgpids 2>/dev/null; wait $lgpids 2>/dev/null; return 1
    fi
    pid=$SERVER_PID
    STARTED="$STARTED $pid"
    for ep in "${WAITS[@]}"; do
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || { i=dead; break; }
            # shellcheck disable=SC2086  # "HOST PORT"
            "$LG" wait $ep 0 2>/dev/null && break
            sleep 0.1
        done
        if [ "$i" = dead ] || [ "$i" = 100 ]; then
            err "$part/$peer: $ep not ready (server ${i/100/not listening}); its output:"
            tail -n 20 "$D/stderr" "$D/error.log" >&2 2>/dev/null
            kill "$pid" $lgpids 2>/dev/null; wait "$pid" $lgpids 2>/dev/null
            return 1
        fi
    done
    sleep 0.3
    say "== $part: $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"

    bytes=$BULK_BYTES
    [ "$peer" = v2ray ] && bytes=$V2RAY_BULK_BYTES

    # warm-up: a short transfer each way
    timeout 60 "$LG" $lgopt bulk-up "${EP_UP[@]}" 16m >/dev/null
    timeout 60 "$LG" $lgopt bulk-down "${EP_DOWN[@]}" 16m >/dev/null

    # bulk up and down (BULK_REPEAT runs each way, median), with the relay's CPU time
    local dir vals ticks n ok
    for dir in up down; do
        vals=""; ticks=0; n=0; ok=1
        for i in $(seq 1 "$BULK_REPEAT"); do
            t0=$(cpu_ticks "$pid")
            if [ $dir = up ]; then
                out=$(timeout 120 "$LG" $lgopt bulk-up "${EP_UP[@]}" "$bytes") || { err "$part/$peer: bulk-up failed"; ok=0; }
            else
                out=$(timeout 120 "$LG" $lgopt bulk-down "${EP_DOWN[@]}" "$bytes") || { err "$part/$peer: bulk-down failed"; ok=0; }
            fi
            sleep 0.1
            t1=$(cpu_ticks "$pid")
            say "   $out"
            ticks=$(( ticks + t1 - t0 )); n=$(( n + 1 ))
            vals="$vals $(printf '%s\n' "$out" | kv mibps)"
        done
        R[$part.$dir,$peer]=""
        R[$part.cpu$dir,$peer]=""
        if [ $ok = 1 ]; then
            R[$part.$dir,$peer]=$(median $vals)
            R[$part.cpu$dir,$peer]=$(calc '%.3f' "$ticks / $CLK_TCK / ($n * $bytes / 1073741824)")
        fi
    done
    if [ -n "${R[$part.cpuup,$peer]}" ] && [ -n "${R[$part.cpudown,$peer]}" ]; then
        R[$part.cpu,$peer]=$(calc '%.3f' "(${R[$part.cpuup,$peer]} + ${R[$part.cpudown,$peer]}) / 2")
    else
        R[$part.cpu,$peer]=""
    fi
    say "   bulk median: up ${R[$part.up,$peer]:--} MiB/s, down ${R[$part.down,$peer]:--} MiB/s; relay cpu s/GiB: up ${R[$part.cpuup,$peer]:--}, down ${R[$part.cpudown,$peer]:--}, both ${R[$part.cpu,$peer]:--}"

    if [ "$part" = tls ]; then
        # memory per idle TLS stream (handshake done, one byte echoed, then idle)
        sleep 0.5
        rss0=$(rss_kib "$pid")
        timeout $(( IDLE_HOLD + 120 )) "$LG" --tls idle "${EP_RR[@]}" "$IDLE_N" "$IDLE_HOLD" >"$D/idle.out" 2>&1 &
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
        wait "$i" || err "$part/$peer: idle failed: $(cat "$D/idle.out")"
        if [ -n "$rss1" ]; then
            R[tls.idle,$peer]=$(calc '%.2f' "($rss1 - $rss0) / $IDLE_N")
            say "   idle: $IDLE_N TLS streams, rss $rss0 -> $rss1 KiB: ${R[tls.idle,$peer]} KiB/stream"
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

    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    kill $lgpids 2>/dev/null
    wait $lgpids 2>/dev/null
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
fmt_row() { printf '%-24s' "$1"; shift; printf ' %11s' "$@"; printf '\n'; }
in_list() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
# ratio PART.FIG PEER PEERLIST
ratio() {
    local a=${R[$1,wharf]:-} b=${R[$1,$2]:-}
    if [ -z "$a" ] || [ -z "$b" ] || ! in_list "$3" wharf || ! in_list "$3" "$2"; then echo "-"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'
}
val() { local v=${R[$1,$2]:-}; if in_list "$3" "$2" && [ -n "$v" ]; then echo "$v"; else echo "-"; fi; }
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
target() {
    local name=$1 f=$2 op=$3 ref=$4 k=$5 pl=$6 a b res
    a=${R[$f,wharf]:-}
    if [ "$ref" = - ]; then b=$k; else b=${R[$f,$ref]:-}; fi
    if [ -z "$a" ] || [ -z "$b" ] || ! in_list "$pl" wharf || { [ "$ref" != - ] && ! in_list "$pl" "$ref"; }; then
        printf '  %-36s n/a\n' "$name"; return
    fi
    [ "$ref" = - ] || b=$(awk -v b="$b" -v k="$k" 'BEGIN { printf "%.6g", b * k }')
    res=$(awk -v a="$a" -v b="$b" -v op="$op" 'BEGIN {
        ok = (op == "ge") ? (a >= b) : (a <= b); print ok ? "PASS" : "MISS" }')
    printf '  %-36s %s  (wharf %s, limit %s)\n' "$name" "$res" "$a" "$b"
}
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
