#!/usr/bin/env bash
# wharf multi-core benchmark: wharf vs nginx (stream) and haproxy (mode tcp) at W = 1, 2, 4, 8
# workers (haproxy: W threads), plain TCP and TLS, and each relay's speed-up from the first W.
#
# Usage: bench/scale.sh          (from anywhere; the repo root is found from this file)
# Env:   WS              worker counts            (default "1 2 4 8", those above nproc left out)
#        BULK_BYTES      bytes each way at each W, over 2xW parallel connections (default 1g)
#        PROBES          64-byte round trips on one more connection during each bulk (default 2000)
#        CONN_SECONDS    duration of the connection-rate test (default 5)
#        BESIDE_SECONDS  duration of the connection-rate test beside a download (default 3)
#        CONN_PORTS      listeners the connection-rate clients spread over, each with its own echo
#                        upstream, so that TIME_WAIT spreads over that many port pairs (default 4)
#        MODES           subset of "tcp tls"          (default both)
#        PEERS           subset of "wharf nginx haproxy" (default all three)
#        AFFINITY        "off" (default): workers and threads left to the scheduler; "auto": each
#                        relay's worker k (haproxy: thread k) bound to CPU k, as each one's own
#                        directive does it (worker_cpu_affinity auto, cpu-map auto:1/1-W 0-(W-1));
#                        wharf also hands each connection to the worker of its CPU (accept_by_cpu)
#
# For each mode, W and peer: the server with W workers on 127.0.0.1, W processes of each upstream
# sharing its port (bench/loadgen.c, SO_REUSEPORT: the upstream is not the limit), then
#   bulk up and bulk down: BULK_BYTES split over 2xW connections at once; MiB/s over the wall time of
#     all of them, the relay's CPU (utime+stime of its process tree) per GiB, and the p99 of PROBES
#     64-byte round trips started with the transfers (the worse of the two directions);
#   connection rate: connect, 64-byte echo, close for CONN_SECONDS with 2xW client threads (TLS: a
#     full handshake each, no resumption); conn/s, the p99 of one connection's time and the relay's
#     CPU per connection;
#   beside a download (W >= 2): the same for BESIDE_SECONDS with one client thread, while one bulk
#     download keeps the worker that took it busy; conn/s and p99. A relay that hands connections
#     out by hash gives 1/W of them to the busy worker, where they wait.
# TLS is 1.3, TLS_AES_128_GCM_SHA256, a P-256 certificate, no tickets (as bench/tls.sh).
# The whole run is about (3 + CONN_SECONDS + 2 x bulk seconds) per case, and BESIDE_SECONDS + 1
# more where W >= 2, 24 cases by default: under 7 minutes on a 16-core machine.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

NPROC=$(nproc)
WS=${WS:-$(for w in 1 2 4 8; do [ "$w" -le "$NPROC" ] && printf '%s ' "$w"; done)}
BULK_BYTES=${BULK_BYTES:-1g}
PROBES=${PROBES:-2000}
CONN_SECONDS=${CONN_SECONDS:-5}
BESIDE_SECONDS=${BESIDE_SECONDS:-3}
CONN_PORTS=${CONN_PORTS:-4}
MODES=${MODES:-tcp tls}
PEERS=${PEERS:-wharf nginx haproxy}
AFFINITY=${AFFINITY:-off}
ALL_PEERS="wharf nginx haproxy"

BULK_BYTES=$(to_bytes "$BULK_BYTES") || exit 1
check_list peer "$PEERS" "$ALL_PEERS"
check_list mode "$MODES" "tcp tls"
check_list affinity "$AFFINITY" "off auto"
for w in $WS; do
    case $w in ''|*[!0-9]*|0) err "WS: '$w' is not a worker count"; exit 1 ;; esac
done
need_wharf 'or set PEERS to benchmark only the others, e.g. PEERS="nginx haproxy"'
need_peers nginx haproxy
need_cmd openssl "openssl not found (apt-get install openssl)"

raise_nofile 4096
make_work wharf-scale
build_loadgen tls
p256_cert

TAGS="up down rr"
for (( i = 0; i < CONN_PORTS; i++ )); do TAGS="$TAGS c$i"; done

# --------------------------------------------------------------- servers
# start_MODE_PEER: as bench/tcp.sh's and tls.sh's, with WORKERS workers and the listeners of TAGS

# shellcheck disable=SC2086  # TAGS: a list of words
start_tcp_wharf() { wharf_start 'network = "tcp"; security = "none";' $TAGS; }
# shellcheck disable=SC2086
start_tls_wharf() { wharf_start "network = \"tcp\"; security = \"tls\"; $(wharf_tls_settings)" $TAGS; }
start_tcp_nginx() { nginx_start ""; }
start_tls_nginx() {
    nginx_start " ssl" "ssl_certificate $CERT;" "ssl_certificate_key $KEY;" \
        "ssl_protocols TLSv1.2 TLSv1.3;" "ssl_session_tickets off;"
}
start_tcp_haproxy() { haproxy_start "" ${HAPROXY_CPU_MAP:+"$HAPROXY_CPU_MAP"}; }
start_tls_haproxy() {
    haproxy_start " ssl crt $WORK/haproxy.pem" "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" \
        ${HAPROXY_CPU_MAP:+"$HAPROXY_CPU_MAP"}
}

# ------------------------------------------------------------------ run

say "wharf multi-core benchmark"
say "command: WS=\"$WS\" BULK_BYTES=$BULK_BYTES PROBES=$PROBES CONN_SECONDS=$CONN_SECONDS BESIDE_SECONDS=$BESIDE_SECONDS CONN_PORTS=$CONN_PORTS MODES=\"$MODES\" PEERS=\"$PEERS\" AFFINITY=$AFFINITY bench/scale.sh${*:+ $*}"
machine_header aes loadavg
say "setup: 127.0.0.1 only; W workers (haproxy nbthread W), W processes of each upstream, 2xW bulk connections, 2xW connecting threads over $CONN_PORTS ports; affinity $AFFINITY"
say ""

has_peer nginx && { nginx_stream_module ssl || exit 1; }

# parallel MODE DIR KEY: BULK_BYTES over 2xW $LG bulk-DIR at once, PROBES round trips beside them;
# R[KEY,$peer] MiB/s, R[cpuKEY,$peer] relay s/GiB, R[p99KEY,$peer] the probes' p99 (us)
parallel() {
    local dir=$1 key=$2 n=$(( 2 * W )) i t0 t1 c0 c1 rrpid ok=1
    local each=$(( BULK_BYTES / n ))
    local -a bp=()
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    for (( i = 0; i < n; i++ )); do
        timeout 120 "$LG" "${LGOPT[@]}" "bulk-$dir" "$HOST" "$(tag_port "$dir")" "$each" >"$D/$key.$i" 2>&1 &
        bp+=($!)
    done
    timeout 120 "$LG" "${LGOPT[@]}" rr "$HOST" "$P_RR" "$PROBES" >"$D/$key.rr" 2>&1 &
    rrpid=$!
    for i in "${bp[@]}"; do wait "$i" || ok=0; done
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$pid")
    wait "$rrpid" || ok=0
    if [ $ok = 0 ]; then
        err "$peer: bulk-$dir or its probes failed: $(cat "$D/$key".* | grep -v mibps | head -n 3)"
        return
    fi
    R[$key,$peer]=$(calc '%.0f' "$each * $n / 1048576 / ($t1 - $t0)")
    R[cpu$key,$peer]=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK / ($each * $n / 1073741824)")
    R[p99$key,$peer]=$(kv p99_us <"$D/$key.rr")
}

# beside_download PORTS: R[bcps,$peer], R[bp99,$peer]: connrate with one thread while one bulk
# download (more than it can finish) runs
beside_download() {
    local out bpid
    timeout 120 "$LG" "${LGOPT[@]}" bulk-down "$HOST" "$P_DOWN" $(( 64 * BULK_BYTES )) >/dev/null 2>&1 &
    bpid=$!
    sleep 0.5
    # shellcheck disable=SC2086  # the ports
    out=$(timeout $(( BESIDE_SECONDS + 60 )) "$LG" "${LGOPT[@]}" connrate "$HOST" "$1" "$BESIDE_SECONDS" 1) ||
        err "$peer: connrate beside a download failed"
    kill "$bpid" 2>/dev/null
    wait "$bpid" 2>/dev/null
    R[bcps,$peer]=$(printf '%s\n' "$out" | kv cps)
    R[bp99,$peer]=$(printf '%s\n' "$out" | kv p99_us)
}

run_case() {
    local pid out c0 c1 ok ports
    new_case "$MODE-$W-$peer"
    if ! "start_${MODE}_$peer"; then
        err "$peer: cannot start"; return 1
    fi
    pid=$SERVER_PID
    started "$pid"
    # shellcheck disable=SC2046  # the ports
    if ! wait_ready "$peer: port %s not ready (server %s); its output:" "$U_SINK" "$U_SOURCE" "$U_ECHO" \
            "${U_CONN[@]}" $(for t in $TAGS; do tag_port "$t"; done); then
        stop_pids "$pid" "${LGPIDS[@]}"
        return 1
    fi
    sleep 0.3

    timeout 60 "$LG" "${LGOPT[@]}" bulk-up "$HOST" "$P_UP" 16m >/dev/null     # warm-up
    timeout 60 "$LG" "${LGOPT[@]}" bulk-down "$HOST" "$P_DOWN" 16m >/dev/null
    parallel up up
    parallel down down
    if [ -n "${R[p99up,$peer]:-}" ] && [ -n "${R[p99down,$peer]:-}" ]; then
        R[p99,$peer]=$(calc '%.1f' "(${R[p99up,$peer]} > ${R[p99down,$peer]} ? ${R[p99up,$peer]} : ${R[p99down,$peer]})")
    fi

    ports=$(IFS=,; echo "${P_CONN[*]}")
    sleep 0.3
    c0=$(cpu_ticks "$pid")
    out=$(timeout $(( CONN_SECONDS + 60 )) "$LG" "${LGOPT[@]}" connrate "$HOST" "$ports" "$CONN_SECONDS" $(( 2 * W ))) ||
        err "$peer: connrate failed"
    c1=$(cpu_ticks "$pid")
    ok=$(printf '%s\n' "$out" | kv ok)
    R[cps,$peer]=$(printf '%s\n' "$out" | kv cps)
    R[cp99,$peer]=$(printf '%s\n' "$out" | kv p99_us)
    [ "${ok:-0}" -gt 0 ] && R[cus,$peer]=$(calc '%.1f' "($c1 - $c0) / $CLK_TCK * 1e6 / $ok")
    [ "$W" -ge 2 ] && beside_download "$ports"

    say "$(printf '%-4s W=%-2s %-8s' "$MODE" "$W" "$peer") up $(val up "$peer") down $(val down "$peer") MiB/s," \
        "relay s/GiB $(val cpuup "$peer")/$(val cpudown "$peer"), probe p99 $(val p99 "$peer") us;" \
        "$(val cps "$peer") conn/s, p99 $(val cp99 "$peer") us, relay $(val cus "$peer") us/conn" \
        "$([ "$W" -ge 2 ] && echo "; beside a download $(val bcps "$peer") conn/s, p99 $(val bp99 "$peer") us")" \
        "$(printf '%s\n' "$out" | kv errors | awk '$1 > 0 { printf "(errors %s)", $1 }')"
    stop_pids "$pid"
    stop_pids "${LGPIDS[@]}"
    return 0
}

FIGS="up down cpuup cpudown p99 cps cp99 cus bcps bp99"
declare -A T    # T[MODE,W,FIG,PEER]
for MODE in $MODES; do
    LGOPT=()
    [ "$MODE" = tls ] && LGOPT=(--tls)
    for W in $WS; do
        export WORKERS=$W UPSTREAM_PROCS=$W
        WHARF_GLOBALS="" NGINX_GLOBALS="" HAPROXY_CPU_MAP=""
        if [ "$AFFINITY" = auto ]; then
            WHARF_GLOBALS='worker_cpu_affinity = "auto"; accept_by_cpu = true;'
            NGINX_GLOBALS='worker_cpu_affinity auto;'
            HAPROXY_CPU_MAP="cpu-map auto:1/1-$W 0-$(( W - 1 ))"
        fi
        export TAGS CONN_PORTS
        for peer in $PEERS; do
            for f in $FIGS; do R[$f,$peer]=""; done
            # a server that did not come up (its output is printed above) gets one more try, on
            # fresh ports, so one bad start does not leave its row empty
            if ! run_case; then
                err "$peer: $MODE W=$W did not start; trying once more"
                run_case || err "$peer: $MODE W=$W skipped"
            fi
            for f in $FIGS; do T[$MODE,$W,$f,$peer]=${R[$f,$peer]:-}; done
        done
    done
done

# ----------------------------------------------------------------- table
say ""
NAME_W=30 CELL_W=10
W1=${WS%% *}
fig_name() {
    case $1 in
    up) echo "up MiB/s" ;; down) echo "down MiB/s" ;; cpuup) echo "relay s/GiB up" ;;
    cpudown) echo "relay s/GiB down" ;; p99) echo "probe p99 us (bulk)" ;; cps) echo "conn/s" ;;
    cp99) echo "conn p99 us" ;; cus) echo "relay us/conn" ;;
    bcps) echo "conn/s beside a download" ;; bp99) echo "conn p99 us beside a download" ;;
    esac
}
# speed-up of figure F at W from the first W, for peer P
speedup() {
    local a=${T[$MODE,$W,$1,$2]:-} b=${T[$MODE,$W1,$1,$2]:-}
    if [ -z "$a" ] || [ -z "$b" ]; then echo "-"; else calc '%.2f' "($b == 0 ? 0 : $a / $b)"; fi
}
for MODE in $MODES; do
    fmt_row "$MODE" wharf nginx haproxy w/nginx w/haproxy
    for W in $WS; do
        for f in $FIGS; do
            [ "$W" -lt 2 ] && in_list "bcps bp99" "$f" && continue
            for peer in $ALL_PEERS; do R[$f,$peer]=${T[$MODE,$W,$f,$peer]:-}; done
            fmt_row "W=$W $(fig_name "$f")" "$(val "$f" wharf)" "$(val "$f" nginx)" "$(val "$f" haproxy)" \
                "$(ratio "$f" nginx)" "$(ratio "$f" haproxy)"
        done
        if [ "$W" != "$W1" ]; then
            for f in up down cps; do
                fmt_row "W=$W speed-up $(fig_name "$f" | cut -d' ' -f1)" "$(speedup "$f" wharf)" \
                    "$(speedup "$f" nginx)" "$(speedup "$f" haproxy)"
            done
        fi
    done
    say ""
done

say "targets (issue 17):"
TARGET_W=40
for MODE in $MODES; do
    for W in $WS; do
        for f in $FIGS; do
            for peer in $ALL_PEERS; do R[$f,$peer]=${T[$MODE,$W,$f,$peer]:-}; done
        done
        if [ "$MODE" = tls ]; then
            target "tls W=$W down MiB/s >= nginx" down ge nginx 1
            target "tls W=$W relay s/GiB down <= nginx" cpudown le nginx 1
        else
            target "tcp W=$W conn/s >= nginx" cps ge nginx 1
            target "tcp W=$W conn p99 <= nginx" cp99 le nginx 1
        fi
    done
done
exit 0
