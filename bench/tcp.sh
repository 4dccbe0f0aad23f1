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

set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
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
err() { printf 'tcp.sh: %s\n' "$*" >&2; }

for p in $PEERS; do
    case " $ALL_PEERS " in *" $p "*) ;; *) err "unknown peer '$p' (known: $ALL_PEERS)"; exit 1 ;; esac
done
has_peer() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }

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

# file descriptors: clients, relay (2 per stream) and upstreams all inherit this
hard=$(ulimit -Hn)
want=$(( IDLE_N * 4 + 4096 ))
[ "$want" -lt 65536 ] && want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d -t wharf-bench.XXXXXX) || exit 1
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
if ! cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o "$LG" "$ROOT/bench/loadgen.c"; then
    err "cannot build bench/loadgen.c"
    exit 1
fi

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
# each start_* writes its config into $D, starts the server in the foreground (in the background of
# this script) and sets SERVER_PID. Ports: P_UP -> sink, P_DOWN -> source, P_RR -> echo.

start_wharf() {
    cat >"$D/wharf.conf" <<EOF
daemon = false;
worker_processes = 1;
user = "nobody";
pid = "wharf.pid";
error_log = "error.log";
log_level = "error";
listeners = (
  { tag = "up";   listen = "$HOST"; port = $P_UP;   upstream = "$HOST:$U_SINK";
    streamSettings = { network = "tcp"; security = "none"; }; },
  { tag = "down"; listen = "$HOST"; port = $P_DOWN; upstream = "$HOST:$U_SOURCE";
    streamSettings = { network = "tcp"; security = "none"; }; },
  { tag = "rr";   listen = "$HOST"; port = $P_RR;   upstream = "$HOST:$U_ECHO";
    streamSettings = { network = "tcp"; security = "none"; }; }
);
EOF
    if ! "$WHARF" -t -p "$D" -c "$D/wharf.conf" >"$D/test.out" 2>&1; then
        err "wharf -t failed:"; cat "$D/test.out" >&2; return 1
    fi
    "$WHARF" -p "$D" -c "$D/wharf.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
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
}

start_nginx() {
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
    server { listen $HOST:$P_UP;   proxy_pass $HOST:$U_SINK; }
    server { listen $HOST:$P_DOWN; proxy_pass $HOST:$U_SOURCE; }
    server { listen $HOST:$P_RR;   proxy_pass $HOST:$U_ECHO; }
}
EOF
    nginx -e "$D/error.log" -p "$D" -c "$D/nginx.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

start_haproxy() {
    cat >"$D/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $(( ($(ulimit -n) - 200) / 2 ))
defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
listen up
    bind $HOST:$P_UP
    server s $HOST:$U_SINK
listen down
    bind $HOST:$P_DOWN
    server s $HOST:$U_SOURCE
listen rr
    bind $HOST:$P_RR
    server s $HOST:$U_ECHO
EOF
    haproxy -db -f "$D/haproxy.cfg" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

start_v2ray() {
    local inb="" tag port up
    for tag in up down rr; do
        case $tag in
        up) port=$P_UP; up=$U_SINK ;; down) port=$P_DOWN; up=$U_SOURCE ;; rr) port=$P_RR; up=$U_ECHO ;;
        esac
        [ -n "$inb" ] && inb="$inb,"
        inb="$inb
    { \"tag\": \"$tag\", \"listen\": \"$HOST\", \"port\": $port, \"protocol\": \"dokodemo-door\",
      \"settings\": { \"address\": \"$HOST\", \"port\": $up, \"network\": \"tcp\" },
      \"streamSettings\": { \"network\": \"tcp\", \"security\": \"none\" } }"
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

version_of() {
    case $1 in
    wharf) "$WHARF" -v 2>&1 | head -n 1 ;;
    nginx) nginx -v 2>&1 | head -n 1 ;;
    haproxy) haproxy -v 2>&1 | head -n 1 | cut -d' ' -f1-3 ;;
    v2ray) v2ray -version 2>&1 | head -n 1 | cut -d' ' -f1-2 ;;
    esac
}

# ------------------------------------------------------------------ run

say "wharf TCP relay benchmark"
say "command: BULK_BYTES=$BULK_BYTES BULK_REPEAT=$BULK_REPEAT V2RAY_BULK_BYTES=$V2RAY_BULK_BYTES RR_COUNT=$RR_COUNT CONN_SECONDS=$CONN_SECONDS CONN_CONCURRENCY=$CONN_CONCURRENCY IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD PEERS=\"$PEERS\" V2RAY_GOMAXPROCS=$V2RAY_GOMAXPROCS bench/tcp.sh${*:+ $*}"
say "machine: nproc=$(nproc) kernel=$(uname -sr) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)\" ulimit-n=$(ulimit -n)"
for p in $PEERS; do say "  $p: $(version_of "$p")"; done
say "setup: 127.0.0.1 only; wharf worker_processes=1, nginx worker_processes 1, haproxy nbthread 1, v2ray GOMAXPROCS=$V2RAY_GOMAXPROCS"
say ""

has_peer nginx && { nginx_stream_module || exit 1; }

declare -A R   # R[figure,peer]

run_peer() {
    local peer=$1 pid lgpids out t0 t1 bytes rss0 rss1 i p

    D=$WORK/$peer
    mkdir -p "$D"
    chmod 755 "$D"
    U_SINK=$(free_port); U_SOURCE=$(free_port); U_ECHO=$(free_port)
    P_UP=$(free_port); P_DOWN=$(free_port); P_RR=$(free_port)

    "$LG" sink "$U_SINK" 2>>"$D/upstreams.err" & lgpids=$!
    "$LG" source "$U_SOURCE" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    "$LG" echo "$U_ECHO" 2>>"$D/upstreams.err" & lgpids="$lgpids $!"
    STARTED="$STARTED $lgpids"

    if ! "start_$peer"; then
        err "$peer: cannot start"; return 1
    fi
    pid=$SERVER_PID
    STARTED="$STARTED $pid"
    for p in "$U_SINK" "$U_SOURCE" "$U_ECHO" "$P_UP" "$P_DOWN" "$P_RR"; do
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || { i=dead; break; }
            "$LG" wait $HOST "$p" 0 2>/dev/null && break
            sleep 0.1
        done
        if [ "$i" = dead ] || [ "$i" = 100 ]; then
            err "$peer: port $p not ready (server ${i/100/not listening}); its output:"
            tail -n 20 "$D/stderr" "$D/error.log" >&2 2>/dev/null
            kill "$pid" $lgpids 2>/dev/null; wait "$pid" $lgpids 2>/dev/null
            return 1
        fi
    done
    sleep 0.3
    say "== $peer (pid $pid: $(tree_pids "$pid" | wc -l) process(es))"

    bytes=$BULK_BYTES
    [ "$peer" = v2ray ] && bytes=$V2RAY_BULK_BYTES

    # warm-up: a short transfer each way, a few round trips
    timeout 60 "$LG" bulk-up $HOST "$P_UP" 16m >/dev/null
    timeout 60 "$LG" bulk-down $HOST "$P_DOWN" 16m >/dev/null

    # bulk up and down (BULK_REPEAT runs each way, median), with the relay's CPU time
    local dir lp vals ticks n ok
    for dir in up down; do
        [ $dir = up ] && lp=$P_UP || lp=$P_DOWN
        vals=""; ticks=0; n=0; ok=1
        for i in $(seq 1 "$BULK_REPEAT"); do
            t0=$(cpu_ticks "$pid")
            out=$(timeout 120 "$LG" bulk-$dir $HOST "$lp" "$bytes") || { err "$peer: bulk-$dir failed"; ok=0; }
            sleep 0.1
            t1=$(cpu_ticks "$pid")
            say "   $out"
            ticks=$(( ticks + t1 - t0 )); n=$(( n + 1 ))
            vals="$vals $(printf '%s\n' "$out" | kv mibps)"
        done
        R[$dir,$peer]=""
        R[cpu$dir,$peer]=""
        if [ $ok = 1 ]; then
            R[$dir,$peer]=$(median $vals)
            R[cpu$dir,$peer]=$(calc '%.3f' "$ticks / $CLK_TCK / ($n * $bytes / 1073741824)")
        fi
    done
    if [ -n "${R[cpuup,$peer]}" ] && [ -n "${R[cpudown,$peer]}" ]; then
        R[cpu,$peer]=$(calc '%.3f' "(${R[cpuup,$peer]} + ${R[cpudown,$peer]}) / 2")
    else
        R[cpu,$peer]=""
    fi
    say "   bulk median: up ${R[up,$peer]} MiB/s, down ${R[down,$peer]} MiB/s; relay cpu s/GiB: up ${R[cpuup,$peer]:--}, down ${R[cpudown,$peer]:--}, both ${R[cpu,$peer]:--}"

    # request/response latency
    out=$(timeout 120 "$LG" rr $HOST "$P_RR" "$RR_COUNT") || err "$peer: rr failed"
    say "   $out"
    R[p50,$peer]=$(printf '%s\n' "$out" | kv p50_us)
    R[p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)

    # memory per idle stream
    sleep 0.5
    rss0=$(rss_kib "$pid")
    timeout $(( IDLE_HOLD + 120 )) "$LG" idle $HOST "$P_RR" "$IDLE_N" "$IDLE_HOLD" >"$D/idle.out" 2>&1 &
    i=$!
    rss1=""
    for _ in $(seq 1 600); do
        if grep -q established "$D/idle.out" 2>/dev/null; then
            sleep 1
            rss1=$(rss_kib "$pid")
            break
        fi
        kill -0 "$i" 2>/dev/null || break
        sleep 0.1
    done
    wait "$i" || err "$peer: idle failed: $(cat "$D/idle.out")"
    if [ -n "$rss1" ]; then
        R[idle,$peer]=$(calc '%.2f' "($rss1 - $rss0) / $IDLE_N")
        say "   idle: $IDLE_N streams, rss $rss0 -> $rss1 KiB: ${R[idle,$peer]} KiB/stream"
    else
        R[idle,$peer]=""
    fi
    sleep 0.5

    # new connections per second
    out=$(timeout $(( CONN_SECONDS + 60 )) "$LG" connrate $HOST "$P_RR" "$CONN_SECONDS" "$CONN_CONCURRENCY") ||
        err "$peer: connrate failed"
    say "   $out"
    R[cps,$peer]=$(printf '%s\n' "$out" | kv cps)

    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    kill $lgpids 2>/dev/null
    wait $lgpids 2>/dev/null
    return 0
}

for peer in $PEERS; do
    run_peer "$peer" || err "$peer: skipped"
done

# ----------------------------------------------------------------- table
say ""
fmt_row() { printf '%-22s' "$1"; shift; printf ' %11s' "$@"; printf '\n'; }
ratio() {
    local a=${R[$1,wharf]:-} b=${R[$1,$2]:-}
    if [ -z "$a" ] || [ -z "$b" ] || ! has_peer wharf || ! has_peer "$2"; then echo "-"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'
}
val() { local v=${R[$1,$2]:-}; if has_peer "$2" && [ -n "$v" ]; then echo "$v"; else echo "-"; fi; }

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
target() {
    local name=$1 f=$2 op=$3 ref=$4 k=$5 a b res
    a=${R[$f,wharf]:-}
    if [ "$ref" = - ]; then b=$k; else b=${R[$f,$ref]:-}; fi
    if [ -z "$a" ] || [ -z "$b" ] || ! has_peer wharf || { [ "$ref" != - ] && ! has_peer "$ref"; }; then
        printf '  %-34s n/a\n' "$name"; return
    fi
    [ "$ref" = - ] || b=$(awk -v b="$b" -v k="$k" 'BEGIN { printf "%.6g", b * k }')
    res=$(awk -v a="$a" -v b="$b" -v op="$op" 'BEGIN {
        ok = (op == "ge") ? (a >= b) : (a <= b); print ok ? "PASS" : "MISS" }')
    printf '  %-34s %s  (wharf %s, limit %s)\n' "$name" "$res" "$a" "$b"
}
target "bulk up >= nginx" up ge nginx 1
target "bulk down >= nginx" down ge nginx 1
target "cpu s/GiB <= nginx" cpu le nginx 1
target "conn/s >= haproxy" cps ge haproxy 1
target "rr p99 <= 1.1 x haproxy" p99 le haproxy 1.1
target "idle <= 2 KiB/stream" idle le - 2
exit 0
