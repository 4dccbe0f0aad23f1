#!/usr/bin/env bash
# wharf under floods: what hostile loads do to a good client, per transport, on loopback, in one run.
# For each case -- tcp-tls (tcp+TLS), ws-tls, h2 (TLS), quic, kcp -- a good client goes through the
# real V2Ray client, as in the other benchmarks: loadgen (plain TCP) -> v2ray client.json (the interop
# fixture of the case; dokodemo-door on LOCAL_PORT, freedom over the transport) -> SERVER -> upstream
# (loadgen sink, source, echo). Its bulk MiB/s (the mean of one transfer up and one down) and its
# 64-byte request/response p99 are measured first alone, then again while, at the same time, hostile
# loads run against the server's listeners of the case (the three of up, down and rr, round-robin):
#   slowloris   SLOW_N connections that trickle a ClientHello, one byte every 1.5-4.5 s, never its
#               last byte (loadgen --tls slowloris); one the server closes is opened again 3 s later
#   garbage     GARBAGE_N connections that send 1-1024 random bytes a second (loadgen garbage); over
#               UDP (quic, kcp): GARBAGE_N sources sending a random datagram a second (loadgen --udp)
#   handshake   FLOOD_RATE new connections a second: TLS cases a ClientHello, built once and replayed
#               (the server still does all its work for each), reset once the server's first flight
#               is back (loadgen --tls hello-flood); quic: spoofed QUIC Initials (objs/quic-flood -S,
#               skipped with a note when it is not built); kcp: new mKCP conversations, one valid
#               DATA segment each ("simple" security, no header) from a new source port
#               (loadgen kcp-flood)
# Every hostile socket is bound to a random 127.x.y.z source (x != 0), so per-address limits never
# take the good client (127.0.0.1) for the flood. slowloris and TCP garbage are over UDP not applicable.
# Servers: wharf for every case (worker_processes = 1, policy defaults: those of V2Ray, handshake
# 60 s); for tcp-tls also nginx (stream, "listen ... ssl"; worker_connections 4096, ssl_handshake_timeout
# 60s, proxy_timeout 10m: its defaults) and haproxy (mode tcp, "bind ... ssl crt"; maxconn 4096,
# timeout client 50s, client-fin 10s, server 50s, as its example configuration), one worker each.
# Figures, per case and server:
#   bulk and p99, alone and under load, and under/alone (targets: bulk >= 90 %, p99 <= 1.5 x); the
#   rr stream's setup (connect to the first answer, through the client: no target, for the record)
#   peak RSS of every worker under load (sampled every 0.2 s; target < 64 MiB each)
#   RSS per half-open connection: (server RSS with the SLOW_N + GARBAGE_N connections held - RSS
#   before) / (SLOW_N + GARBAGE_N), in KiB (TCP cases; the server's whole process tree)
#   workers died: worker pids before the hostile loads that are gone after them, or none left (target 0)
#   the hostile loads' achieved figures: connections held, closed by the server, handshake rate
# Order per (case, server): fresh server, client and upstreams; warm-up; alone; slowloris and garbage
# started, RSS once all have connected once; handshake flood started; 1 s later under load; the
# hostile loads stopped (SIGTERM). Target misses are reported, not failed.
#
# Usage: bench/flood.sh          (from anywhere; the repo root is found from this file)
# Env:   BULK_BYTES        bytes per bulk transfer, each way, tcp-tls ws-tls h2 (default 268435456 = 256 MiB)
#        UDP_BULK_BYTES    the same for quic and kcp                        (default 33554432 = 32 MiB)
#        RR_COUNT          64-byte round trips (tcp-tls ws-tls h2 quic)     (default 2000)
#        KCP_RR_COUNT      64-byte round trips for kcp (tti 50: tens of ms each) (default 100)
#        SLOW_N            slowloris connections                            (default 1000)
#        GARBAGE_N         garbage connections (UDP sources)                (default 1000)
#        FLOOD_RATE        new handshakes (conversations, Initials) a second (default 2000)
#        FLOOD_SECONDS     longest run of a hostile load; they are stopped once the measurement
#                          under load is done                               (default 300)
#        HOLD_WAIT         seconds to wait for slowloris and garbage to connect (default 30)
#        RSS_ABORT_MIB     a worker above this stops the hostile loads at once, said in the output
#                          (the peak then is a MISS of its own)             (default 1024)
#        CASES             subset of "tcp-tls ws-tls h2 quic kcp"          (default all)
#        PEERS             subset of "wharf nginx haproxy" (nginx, haproxy: tcp-tls only)
#                                                                           (default all three)
#        CLIENT_GOMAXPROCS GOMAXPROCS of the v2ray client                   (default nproc)
#        WHARF_SHARED      the shared folder with interop/ (default ../shared relative to the repo root)
# Default run: about 6 minutes on 2 cores (RSS_ABORT_MIB bounds what a worker that keeps growing costs).
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

SHARED=${WHARF_SHARED:-$ROOT/../shared}
BULK_BYTES=${BULK_BYTES:-268435456}
UDP_BULK_BYTES=${UDP_BULK_BYTES:-33554432}
RR_COUNT=${RR_COUNT:-2000}
KCP_RR_COUNT=${KCP_RR_COUNT:-100}
SLOW_N=${SLOW_N:-1000}
GARBAGE_N=${GARBAGE_N:-1000}
FLOOD_RATE=${FLOOD_RATE:-2000}
FLOOD_SECONDS=${FLOOD_SECONDS:-300}
HOLD_WAIT=${HOLD_WAIT:-30}
RSS_ABORT_MIB=${RSS_ABORT_MIB:-1024}
ALL_CASES="tcp-tls ws-tls h2 quic kcp"
CASES=${CASES:-$ALL_CASES}
ALL_PEERS="wharf nginx haproxy"
PEERS=${PEERS:-$ALL_PEERS}
CLIENT_GOMAXPROCS=${CLIENT_GOMAXPROCS:-$(nproc)}
BULK_REPEAT=1
QUIC_FLOOD=$ROOT/objs/quic-flood
WS_PATH=/wharf-ws H2_PATH=/wharf-h2   # the fixtures' paths
export QUIC_KEY=wharf-bench-quic-key
V2RAY_VERSION_FIELDS=1-2,5-

BULK_BYTES=$(to_bytes "$BULK_BYTES") && UDP_BULK_BYTES=$(to_bytes "$UDP_BULK_BYTES") || exit 1

check_list case "$CASES" "$ALL_CASES"
check_list peer "$PEERS" "$ALL_PEERS"
need_wharf 'or set PEERS to run only the others, e.g. PEERS="nginx haproxy" CASES=tcp-tls'
in_list "$CASES" tcp-tls || PEERS=$(for p in $PEERS; do [ "$p" = wharf ] && echo wharf; done)
need_peers nginx haproxy
need_cmd v2ray "v2ray is not installed (apt-get install v2ray): it is the good client"
# shellcheck disable=SC2086  # the list
need_fixtures $CASES
need_cmd openssl "openssl not found (apt-get install openssl)"

raise_nofile $(( SLOW_N + GARBAGE_N + FLOOD_RATE * 10 ))
make_work wharf-flood
build_loadgen tls
fixture_cert
cat "$CERT" "$KEY" >"$WORK/haproxy.pem"

# --------------------------------------------------------------- servers

# ---- wharf's connection limits: the one place for them ----
# worker_connections (clients per worker, handshakes and UDP sessions included) as nginx's and
# haproxy's below; the hostile sources are many addresses, so per-address caps would not apply.
WHARF_GLOBALS=${WHARF_GLOBALS-'worker_connections = 4096;'}

# the wharf streamSettings of a case: the fixture's server.json, as wharf.conf spells it
case_settings() {
    case $1 in
    tcp-tls) echo "network = \"tcp\"; security = \"tls\"; $(wharf_tls_settings)" ;;
    ws-tls) echo "network = \"ws\"; security = \"tls\"; wsSettings = { path = \"$WS_PATH\"; };
      $(wharf_tls_settings)" ;;
    h2) echo "network = \"h2\"; security = \"tls\";
      httpSettings = { host = [ \"localhost\", \"h2.example.com\" ]; path = \"$H2_PATH\"; };
      $(wharf_tls_settings)" ;;
    quic) echo 'network = "quic"; security = "none";
      quicSettings = { security = "none"; key = ""; header = { type = "none"; }; };' ;;
    kcp) echo 'network = "kcp"; security = "none"; kcpSettings = { mtu = 1350; tti = 50;
      uplinkCapacity = 5; downlinkCapacity = 20; congestion = false; readBufferSize = 2;
      writeBufferSize = 2; header = { type = "none"; }; };' ;;
    esac
}

start_wharf() { wharf_start "$(case_settings "$CASE")" up down rr; }

start_nginx() {
    NGINX_WORKER_CONNECTIONS=4096 nginx_start " ssl" "ssl_certificate $CERT;" "ssl_certificate_key $KEY;" \
        "ssl_protocols TLSv1.2 TLSv1.3;" "ssl_handshake_timeout 60s;" "proxy_timeout 10m;"
}

start_haproxy() {
    HAPROXY_MAXCONN=4096 HAPROXY_DEFAULTS=$'timeout client 50s\ntimeout client-fin 10s\ntimeout server 50s' \
        haproxy_start " ssl crt $WORK/haproxy.pem" "ssl-default-bind-options ssl-min-ver TLSv1.2"
}

udp_case() { case $1 in quic|kcp) return 0 ;; esac; return 1; }

# the workers of a server: the children of $1 (wharf's and nginx's master), or $1 itself (haproxy -db)
worker_pids() {
    local c
    c=$(pgrep -P "$1" 2>/dev/null | sort -n | tr '\n' ' ')
    echo "${c:-$1}"
}

# rss_sampler OUT "HOSTILE-PIDS" PID...: every 0.2 s a line "PID VmRSS-KiB" per live PID into OUT,
# until killed; once one is above RSS_ABORT_MIB, the hostile loads are stopped (SIGTERM) and OUT.abort
# says so: a worker that grows without bound would take the machine's memory with it
rss_sampler() {
    local out=$1 hostile=$2 p v
    shift 2
    while :; do
        for p in "$@"; do
            v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
            [ -n "$v" ] || continue
            echo "$p $v" >>"$out"
            if [ "$v" -gt $(( RSS_ABORT_MIB * 1024 )) ] && [ ! -f "$out.abort" ]; then
                echo "worker $p at $(( v / 1024 )) MiB" >"$out.abort"
                # shellcheck disable=SC2086  # the pids
                kill -TERM $hostile 2>/dev/null
            fi
        done
        sleep 0.2
    done
}

# wait_line FILE... : each FILE has an "established" line, within HOLD_WAIT s; status 1 if not
wait_line() {
    local f i
    for f in "$@"; do
        for i in $(seq 1 $(( HOLD_WAIT * 10 ))); do
            grep -q established "$f" 2>/dev/null && break
            sleep 0.1
        done
        grep -q established "$f" 2>/dev/null || return 1
    done
}

# ------------------------------------------------------------------ run

say "wharf under floods: a good client through the V2Ray client, alone and beside hostile loads"
say "command: BULK_BYTES=$BULK_BYTES UDP_BULK_BYTES=$UDP_BULK_BYTES RR_COUNT=$RR_COUNT KCP_RR_COUNT=$KCP_RR_COUNT SLOW_N=$SLOW_N GARBAGE_N=$GARBAGE_N FLOOD_RATE=$FLOOD_RATE FLOOD_SECONDS=$FLOOD_SECONDS HOLD_WAIT=$HOLD_WAIT RSS_ABORT_MIB=$RSS_ABORT_MIB CASES=\"$CASES\" PEERS=\"$PEERS\" CLIENT_GOMAXPROCS=$CLIENT_GOMAXPROCS bench/flood.sh${*:+ $*}"
machine_header aes loadavg
say "  v2ray (client): $(version_of v2ray)"
say "  loadgen: $(openssl version | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 only; wharf worker_processes=1${WHARF_GLOBALS:+ $WHARF_GLOBALS}, nginx worker_processes 1, haproxy nbthread 1; v2ray client GOMAXPROCS=$CLIENT_GOMAXPROCS"
say "hostile sources: random 127.x.y.z (x != 0); good client: 127.0.0.1"
if in_list "$CASES" quic && [ ! -x "$QUIC_FLOOD" ]; then
    say "note: objs/quic-flood is not built (make): the quic case runs without its Initial flood"
fi
say ""

has_peer nginx && { nginx_stream_module ssl || exit 1; }

# measure PREFIX: rr, then one bulk transfer each way, through the client; sets R[CASE.PREFIXp99],
# R[CASE.PREFIXfirst] (ms from connect to the first answer: the stream's setup),
# R[CASE.PREFIXbulk] (mean of up and down) and R[CASE.PREFIXup/down]; "fail" when one failed
measure() {
    local pre=$1 out n=$RR_COUNT
    [ "$CASE" = kcp ] && n=$KCP_RR_COUNT
    if out=$(timeout $(( n / 5 + 60 )) "$LG" rr "$HOST" "$L_RR" "$n" 2>&1); then
        say "   $out"
        R[$CASE.${pre}p99,$peer]=$(printf '%s\n' "$out" | kv p99_us)
        R[$CASE.${pre}first,$peer]=$(printf '%s\n' "$out" | kv first_ms)
    else
        err "$CASE/$peer: rr ($pre) failed: $out"
        R[$CASE.${pre}p99,$peer]=fail; R[$CASE.${pre}first,$peer]=fail
    fi
    bulk_pair "$CASE.$pre" "$CASE/$peer" "$BYTES"
    R[$CASE.${pre}bulk,$peer]=$(awk -v u="${R[$CASE.${pre}up,$peer]:-}" -v d="${R[$CASE.${pre}down,$peer]:-}" \
        'BEGIN { if (u != "" && d != "") printf "%.1f", (u + d) / 2; else print "fail" }')
}

# start_hostile NAME COMMAND...: COMMAND in the background, its output in $D/NAME.out; HPIDS
start_hostile() {
    local name=$1
    shift
    "$@" >"$D/$name.out" 2>&1 &
    HPIDS+=($!)
    started $!
}

# run_case PEER
run_case() {
    local peer=$1 pid cpid="" ports w before after died sampler f p out
    local -a BULK_UP BULK_DOWN HPIDS=() WAITS

    new_case "$CASE-$peer"
    L_UP=$(free_port); L_DOWN=$(free_port); L_RR=$(free_port)
    ports=$P_UP,$P_DOWN,$P_RR
    BYTES=$BULK_BYTES
    udp_case "$CASE" && BYTES=$UDP_BULK_BYTES
    stop() { stop_pids "${HPIDS[@]}" ${cpid:+"$cpid"} "$pid" "${LGPIDS[@]}"; }

    if ! "start_$peer"; then err "$CASE/$peer: cannot start"; stop_pids "${LGPIDS[@]}"; return 1; fi
    pid=$SERVER_PID
    started "$pid"
    WAITS=("$U_SINK" "$U_SOURCE" "$U_ECHO")
    udp_case "$CASE" || WAITS+=("$P_UP" "$P_DOWN" "$P_RR")   # UDP ports cannot be probed
    wait_ready "$CASE/$peer: port %s not ready (%s); output:" "${WAITS[@]}" || { stop; return 1; }
    sleep 0.3
    if ! v2ray_fixture_client "$CASE"; then err "$CASE/$peer: cannot start the v2ray client"; stop; return 1; fi
    cpid=$CLIENT_PID
    started "$cpid"
    wait_ready "$CASE/$peer: port %s not ready (%s); output:" "$L_UP" "$L_DOWN" "$L_RR" || { stop; return 1; }
    sleep 0.3
    say "== $CASE: server $peer (pid $pid, workers $(worker_pids "$pid")), v2ray client pid $cpid"

    # --ack, --poke: the end of an upload is the sink's byte; a download starts with one byte, as
    # QUIC and mKCP clients open nothing before the application writes
    BULK_UP=(--ack bulk-up "$HOST" "$L_UP"); BULK_DOWN=(--poke bulk-down "$HOST" "$L_DOWN")
    timeout 60 "$LG" rr "$HOST" "$L_RR" 100 >/dev/null || err "$CASE/$peer: warm-up rr failed"
    timeout 60 "$LG" "${BULK_UP[@]}" 4m >/dev/null || err "$CASE/$peer: warm-up up failed"
    timeout 60 "$LG" "${BULK_DOWN[@]}" 4m >/dev/null || err "$CASE/$peer: warm-up down failed"

    say "   alone:"
    measure a

    # hostile loads: first those that hold connections, RSS once all have connected once
    before=$(worker_pids "$pid")
    sleep 1
    RSS0=$(rss_kib "$pid")
    if udp_case "$CASE"; then
        start_hostile garbage "$LG" --udp garbage "$HOST" "$ports" "$GARBAGE_N" "$FLOOD_SECONDS"
        wait_line "$D/garbage.out" || err "$CASE/$peer: garbage sources not all started"
        R[$CASE.half,$peer]=""
    else
        start_hostile slowloris "$LG" --tls slowloris "$HOST" "$ports" "$SLOW_N" "$FLOOD_SECONDS"
        start_hostile garbage "$LG" garbage "$HOST" "$ports" "$GARBAGE_N" "$FLOOD_SECONDS"
        wait_line "$D/slowloris.out" "$D/garbage.out" ||
            err "$CASE/$peer: not every slowloris / garbage connection connected within $HOLD_WAIT s"
        sleep 1
        RSS1=$(rss_kib "$pid")
        R[$CASE.half,$peer]=$(calc '%.2f' "($RSS1 - $RSS0) / ($SLOW_N + $GARBAGE_N)")
        say "   held: $(grep -h established "$D/slowloris.out" "$D/garbage.out" | tr '\n' ' ')"
        say "   server rss $RSS0 -> $RSS1 KiB: ${R[$CASE.half,$peer]} KiB per hostile connection"
    fi
    case $CASE in
    quic)
        if [ -x "$QUIC_FLOOD" ]; then
            # one Initial flood per listener, FLOOD_RATE / 3 each
            for p in $P_UP $P_DOWN $P_RR; do
                start_hostile "quic-flood-$p" "$QUIC_FLOOD" -r $(( FLOOD_RATE / 3 )) -d "$FLOOD_SECONDS" -S "$HOST" "$p"
            done
        fi ;;
    kcp) start_hostile flood "$LG" kcp-flood "$HOST" "$ports" "$FLOOD_RATE" "$FLOOD_SECONDS" ;;
    *) start_hostile flood "$LG" --tls hello-flood "$HOST" "$ports" "$FLOOD_RATE" "$FLOOD_SECONDS" ;;
    esac
    # shellcheck disable=SC2086  # the pids
    rss_sampler "$D/rss.samples" "${HPIDS[*]}" $before &
    sampler=$!
    started "$sampler"
    local t_flood
    t_flood=$(date +%s.%N)
    sleep 1

    say "   under load:"
    measure l

    stop_pids "$sampler"
    kill -TERM "${HPIDS[@]}" 2>/dev/null
    for p in "${HPIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    local secs
    secs=$(calc '%.1f' "$(date +%s.%N) - $t_flood")
    for f in slowloris garbage flood; do
        [ -f "$D/$f.out" ] && say "   $(grep -v established "$D/$f.out" | tail -n 1)"
    done

    # workers: peak RSS each, and which died
    R[$CASE.peak,$peer]=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (p in m) if (m[p] > x) x = m[p]; if (x) printf "%.1f", x / 1024 }' \
        "$D/rss.samples" 2>/dev/null)
    [ -f "$D/rss.samples.abort" ] &&
        say "   hostile loads stopped early: $(cat "$D/rss.samples.abort") (> RSS_ABORT_MIB=$RSS_ABORT_MIB); the figures under load after that are without them"
    say "   worker peak rss under load (KiB): $(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (p in m) printf "pid %s %d; ", p, m[p] }' "$D/rss.samples" 2>/dev/null)"
    after=$(worker_pids "$pid")
    died=0
    for w in $before; do kill -0 "$w" 2>/dev/null || died=$(( died + 1 )); done
    kill -0 "$pid" 2>/dev/null || died=$(( died + 1 ))
    R[$CASE.died,$peer]=$died
    say "   workers before: $before; after: $after; died: $died"

    # the hostile loads' figures
    R[$CASE.slowheld,$peer]=""; R[$CASE.slowclosed,$peer]=""
    if [ -f "$D/slowloris.out" ]; then
        R[$CASE.slowheld,$peer]=$(kv held <"$D/slowloris.out")
        R[$CASE.slowclosed,$peer]=$(grep -v established "$D/slowloris.out" | kv closed_by_server)
    fi
    if udp_case "$CASE"; then
        R[$CASE.garbheld,$peer]=$(grep -v established "$D/garbage.out" | kv rate)
        R[$CASE.garbclosed,$peer]=""
    else
        R[$CASE.garbheld,$peer]=$(kv held <"$D/garbage.out")
        R[$CASE.garbclosed,$peer]=$(grep -v established "$D/garbage.out" | kv closed_by_server)
    fi
    R[$CASE.flrate,$peer]=""; R[$CASE.flok,$peer]=""
    if [ -f "$D/flood.out" ]; then
        R[$CASE.flrate,$peer]=$(kv rate <"$D/flood.out")
        R[$CASE.flok,$peer]=$(kv flights <"$D/flood.out")
    elif [ "$CASE" = quic ] && [ -x "$QUIC_FLOOD" ]; then
        local sent=0 hs=0 v
        for p in $P_UP $P_DOWN $P_RR; do
            say "   quic-flood $p: $(tail -n 1 "$D/quic-flood-$p.out")"
            v=$(tail -n 1 "$D/quic-flood-$p.out" | sed -n 's/.*sent=\([0-9]*\).*/\1/p'); sent=$(( sent + ${v:-0} ))
            v=$(tail -n 1 "$D/quic-flood-$p.out" | sed -n 's/.*handshake=\([0-9]*\).*/\1/p'); hs=$(( hs + ${v:-0} ))
        done
        R[$CASE.flrate,$peer]=$(calc '%.0f' "$sent / $secs")
        R[$CASE.flok,$peer]=$hs
    fi
    stop
    return 0
}

for CASE in $CASES; do
    for peer in $PEERS; do
        [ "$CASE" = tcp-tls ] || [ "$peer" = wharf ] || continue
        run_case "$peer" || err "$CASE/$peer: skipped"
    done
done

# ----------------------------------------------------------------- tables
# ratio_of CASE FIG PEER: R[CASE.lFIG] / R[CASE.aFIG] into R[CASE.FIGr]; "fail" when under load failed
ratio_of() {
    local va=${R[$1.a$2,$3]:-} vl=${R[$1.l$2,$3]:-}
    if [ "$vl" = fail ] && [ -n "$va" ] && [ "$va" != fail ]; then R[$1.$2r,$3]=fail; return; fi
    R[$1.$2r,$3]=$(awk -v a="$va" -v l="$vl" 'BEGIN { if (a != "" && l != "" && a != "fail" && l != "fail" && a > 0) printf "%.2f", l / a }')
}
NAME_W=34 CELL_W=10
fig_name() {
    case $1 in
    abulk) echo "bulk alone MiB/s" ;; lbulk) echo "bulk under load MiB/s" ;; bulkr) echo "bulk under/alone" ;;
    ap99) echo "rr p99 alone us" ;; lp99) echo "rr p99 under load us" ;; p99r) echo "p99 under/alone" ;;
    afirst) echo "rr setup alone ms" ;; lfirst) echo "rr setup under load ms" ;;
    peak) echo "peak worker RSS MiB" ;; half) echo "KiB per half-open connection" ;;
    died) echo "workers died" ;; slowheld) echo "slowloris held (of $SLOW_N)" ;;
    slowclosed) echo "slowloris closed by server" ;;
    garbheld) echo "garbage held (of $GARBAGE_N) / dgram/s" ;; garbclosed) echo "garbage closed by server" ;;
    flrate) echo "handshake flood /s (of $FLOOD_RATE)" ;; flok) echo "flood: first flights back" ;;
    esac
}
for CASE in $CASES; do
    pl=wharf
    [ "$CASE" = tcp-tls ] && pl=$PEERS
    for peer in $pl; do ratio_of "$CASE" bulk "$peer"; ratio_of "$CASE" p99 "$peer"; done
    say ""
    case $CASE in
    tcp-tls) say "tcp+TLS" ;; ws-tls) say "ws+TLS" ;; h2) say "h2 (TLS)" ;;
    quic) say "quic$([ -x "$QUIC_FLOOD" ] || echo " (no Initial flood: objs/quic-flood not built)")" ;;
    kcp) say "kcp (mKCP)" ;;
    esac
    # shellcheck disable=SC2086  # the peers
    fmt_row figure $pl
    for f in abulk lbulk bulkr ap99 lp99 p99r afirst lfirst peak half died slowheld slowclosed garbheld garbclosed flrate flok; do
        row=()
        for peer in $pl; do row+=("$(val "$CASE.$f" "$peer" "$pl")"); done
        if udp_case "$CASE" && { [ $f = slowheld ] || [ $f = slowclosed ] || [ $f = half ]; }; then
            row=(); for peer in $pl; do row+=(n/a); done
        fi
        fmt_row "$(fig_name $f)" "${row[@]}"
    done
done

# ----------------------------------------------------------------- targets
# target_peer NAME VALUE OP LIMIT: PASS / MISS (VALUE OP LIMIT), "fail" a MISS, empty n/a
TARGET_W=44
target_peer() {
    local v
    if [ -z "$2" ] || [ "$2" = - ]; then printf "  %-${TARGET_W}s n/a\n" "$1"; return; fi
    if [ "$2" = fail ]; then printf "  %-${TARGET_W}s MISS  (failed under load)\n" "$1"; return; fi
    v=$(awk -v a="$2" -v b="$4" -v op="$3" 'BEGIN { ok = (op == "ge") ? (a >= b) : (op == "lt") ? (a < b) : (a <= b); print ok ? "PASS" : "MISS" }')
    printf "  %-${TARGET_W}s %s  (%s, limit %s)\n" "$1" "$v" "$2" "$4"
}
say ""
say "targets (each server against itself alone; misses are reported, not failed):"
for CASE in $CASES; do
    pl=wharf
    [ "$CASE" = tcp-tls ] && pl=$PEERS
    for peer in $pl; do
        target_peer "$CASE $peer bulk under load >= 90 % alone" "${R[$CASE.bulkr,$peer]:-}" ge 0.90
        target_peer "$CASE $peer p99 under load <= 1.5 x alone" "${R[$CASE.p99r,$peer]:-}" le 1.5
        target_peer "$CASE $peer peak worker RSS < 64 MiB" "${R[$CASE.peak,$peer]:-}" lt 64
        target_peer "$CASE $peer workers died = 0" "${R[$CASE.died,$peer]:-}" le 0
    done
done
exit 0
