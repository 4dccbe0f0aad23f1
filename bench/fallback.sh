#!/usr/bin/env bash
# wharf fallback benchmark: the cost of a fallback hop.  One website (Debian's nginx serving a small
# file at / and a big one at /big from a temporary directory) is measured three ways in one run:
#   direct  the load generator talks to the website itself;
#   wharf   through a ws listener (path /a) whose only fallback, an entry without a condition, is
#           the website: "/" and "/big" are refused by the websocket handshake (a wrong path) and
#           the connection, with the request head already read, is relayed to the website;
#   nginx   through nginx as an HTTP reverse proxy doing the same path routing (an http block:
#           location /a -> the ws upstream, location / -> proxy_pass to the website), as the
#           issue sets it up: nginx's default proxy_pass, a new connection to the website per
#           request, as wharf's fallback dials one per client connection;
#   pooled  the same nginx with a keepalive pool of connections to the website (HTTP/1.1), as a
#           website's own proxy is often tuned: shown for reference, not a target.  A fallback
#           relays bytes it does not parse, so it cannot know where a response ends and hand
#           the website's connection to another client; on a new connection per request it
#           pays a second connection that the pool does not (on loopback most of the kernel's
#           work for both ends of it lands on the dialler).
# Figures for each: requests/s and p50/p99 latency of small GETs on keep-alive connections and on a
# new connection per request (wrk --latency; "Connection: close"), MiB/s of the big download
# (curl), each the median of several runs in which the routes take turns, and the CPU time of the
# server in front (wharf: master + worker; nginx: master + worker; direct: the website) over all
# of them, in microseconds per request and seconds per GiB.  Ratios are wharf / nginx.  The
# targets (from the issue): through wharf >= nginx's figures.
#
# Not the same work: wharf relays the bytes of one client connection over one upstream connection
# of its own (a new connection per request dials the website anew), where nginx parses each
# request and reuses pooled upstream connections; nginx adds its proxy headers, wharf forwards
# the client's bytes unchanged.  No PROXY header is sent (xver = 0) on either.
#
# The websocket path itself (ws /a, no fallback taken) must stay as fast as before fallbacks
# (within 5 %).  To check it, run bench/ws.sh in its direct mode on this build and on a build of
# the commit before fallbacks, one after the other on an idle machine, and compare bulk MiB/s,
# server cpu s/GiB and rr p99 of the "B wharf" column:
#   PEERS=wharf MODES=direct bench/ws.sh > after.txt
#   (in a checkout of the commit before fallbacks, built: ./configure && make)
#   PEERS=wharf MODES=direct bench/ws.sh > before.txt
#
# Usage: bench/fallback.sh       (from anywhere; the repo root is found from this file)
# Env:   SMALL_BYTES   size of the small file at /                   (default 1024)
#        BIG_BYTES     size of the file at /big                       (default 256m)
#        BIG_REPEAT    downloads of /big per route; the median        (default 3)
#        ROUNDS        wrk runs per route and kind; the median        (default 3)
#        DURATION      seconds of each wrk run                        (default 3)
#        CONNS         wrk connections                                (default 32)
#        WRK_THREADS   wrk threads                                    (default 1)
#        PEERS         subset of "direct wharf nginx pooled", the routes (default all four)
#        NGINX_KEEPALIVE  the pooled route's pool of idle connections to the website (default 64)
# Ports: 20000-20999 only.  Needs nginx (the website and the proxy; its packaged service is never
# started), wrk and curl: each one missing is installed with apt-get, saying so first.
# Exit status: 0 when the run completed (target misses are reported, not failed), 1 on setup errors.

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC2317  # (SC2317: start_* are called indirectly)
. "$(dirname "$0")/lib.sh"

SMALL_BYTES=${SMALL_BYTES:-1024}
BIG_BYTES=${BIG_BYTES:-256m}
BIG_REPEAT=${BIG_REPEAT:-3}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-1}
PEERS=${PEERS:-direct wharf nginx pooled}
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-64}
ALL_PEERS="direct wharf nginx pooled"
PORT_MIN=20000 PORT_COUNT=1000

SMALL_BYTES=$(to_bytes "$SMALL_BYTES") && BIG_BYTES=$(to_bytes "$BIG_BYTES") || exit 1

# apt_install COMMAND PACKAGE: PACKAGE installed when COMMAND is missing; services the package
# would start are not (a policy-rc.d that refuses them, for the time of the install)
apt_install() {
    local rc=0 policy=/usr/sbin/policy-rc.d own=0
    command -v "$1" >/dev/null 2>&1 && return 0
    say "$ME: $1 is missing: installing the Debian package $2 (apt-get install $2)" >&2
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && own=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >&2 || rc=1
    [ $own = 1 ] && rm -f $policy
    if [ $rc != 0 ] || ! command -v "$1" >/dev/null 2>&1; then
        err "cannot install $2: install it by hand (apt-get install $2)"; exit 1
    fi
}

check_list route "$PEERS" "$ALL_PEERS"
need_wharf "or set PEERS=\"direct nginx\" to measure without it"
apt_install nginx nginx
apt_install wrk wrk
apt_install curl curl

raise_nofile 4096
make_work wharf-fallback
build_loadgen

# ------------------------------------------------------------------------------- the website
SITE=$WORK/site
mkdir -p "$SITE/www" && chmod -R 755 "$SITE"
head -c "$SMALL_BYTES" /dev/zero | tr '\0' 'x' >"$SITE/www/index.html"
dd if=/dev/zero of="$SITE/www/big" bs=1M count=$(( (BIG_BYTES + 1048575) >> 20 )) status=none
truncate -s "$BIG_BYTES" "$SITE/www/big"
chmod 644 "$SITE/www/index.html" "$SITE/www/big"

# nginx_http DIR SERVER...: DIR/nginx.conf, nginx with one worker and an http block holding the
# SERVER lines (temporary files in DIR: Debian's compiled-in paths need not exist), started in
# the foreground; sets SERVER_PID
nginx_http() {
    local dir=$1 l
    shift
    {
        printf 'daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile %s;\n' "$(ulimit -n)"
        printf 'pid %s/nginx.pid;\nerror_log %s/error.log error;\n' "$dir" "$dir"
        printf 'events { worker_connections 16384; }\nhttp {\n'
        printf '    access_log off;\n    sendfile on;\n    tcp_nopush on;\n'
        printf '    keepalive_requests 1000000;\n    keepalive_timeout 65;\n'
        for l in client_body proxy fastcgi uwsgi scgi; do printf '    %s_temp_path %s/%s;\n' "$l" "$dir" "$l"; done
        for l in "$@"; do printf '    %s\n' "$l"; done
        printf '}\n'
    } >"$dir/nginx.conf"
    nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout" 2>"$dir/stderr" &
    SERVER_PID=$!
}

P_SITE=$(free_port)
nginx_http "$SITE" "types { text/html html; } default_type application/octet-stream;" \
    "server { listen $HOST:$P_SITE; root $SITE/www; index index.html; }"
SITE_PID=$SERVER_PID
started "$SITE_PID"

# --------------------------------------------------------------------------------- the routes
# start_ROUTE: the server in front of the website on FPORT, in $D; sets SERVER_PID (empty: none).
# The websocket upstream of /a is the loadgen echo of new_case (no figure uses it).

start_direct() { FPORT=$P_SITE; SERVER_PID=""; }

start_wharf() {
    FPORT=$(free_port)
    wharf_conf "{ tag = \"front\"; listen = \"$HOST\"; port = $FPORT; upstream = \"$HOST:$U_ECHO\";
    streamSettings = { network = \"ws\"; wsSettings = { path = \"/a\"; }; };
    fallbacks = ( { dest = \"$HOST:$P_SITE\"; } ); }"
    wharf_run
}

# start_nginx [POOL]: the nginx proxy, with a keepalive pool of POOL connections to the website
start_nginx() {
    local pool="keepalive ${1:-0};" site="proxy_http_version 1.1; proxy_set_header Connection \"\";"
    [ "${1:-0}" -gt 0 ] || pool="" site=""
    FPORT=$(free_port)
    nginx_http "$D" \
        "upstream site { server $HOST:$P_SITE; $pool }" \
        "upstream ws_a { server $HOST:$U_ECHO; }" \
        "server {" \
        "    listen $HOST:$FPORT;" \
        "    location /a { proxy_pass http://ws_a; proxy_http_version 1.1;" \
        "        proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \"upgrade\"; }" \
        "    location / { proxy_pass http://site; $site proxy_max_temp_file_size 0; }" \
        "}"
}

start_pooled() { start_nginx "$NGINX_KEEPALIVE"; }

# ------------------------------------------------------------------------------------ measures
# Each figure is measured ROUNDS times, the routes taking turns within a round, and the median is
# reported: on a shared machine a burst of someone else's load then hits one sample of each route
# rather than all of one route's.  SUM[KEY,ROUTE] and VALS[KEY,ROUTE] gather the samples.
declare -A PORT FRONT VALS SUM

# us VALUE: a wrk duration ("812.00us", "1.25ms", "1.02s") in microseconds
us() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000
        printf "%.0f", n }'
}

# add KEY VALUE: one sample of KEY for $peer
add() { VALS[$1,$peer]="${VALS[$1,$peer]:-} $2"; }
# sum KEY N: SUM[KEY] += N for $peer
sum() { SUM[$1,$peer]=$(( ${SUM[$1,$peer]:-0} + $2 )); }

# front_ticks: the CPU ticks of the server in front of the website on $peer's route (the website
# itself on the direct route)
front_ticks() { cpu_ticks "${FRONT[$peer]}"; }

# small KEY [HEADER]: one wrk run of DURATION s on / of $peer's route; samples KEY.rps, KEY.p50 and
# KEY.p99 (us), and the requests and front CPU ticks in SUM; FAILED[KEY,$peer] on errors
declare -A FAILED
small() {
    local k=$1 out t0 t1 rps n errs
    local -a h=()
    [ -n "${2:-}" ] && h=(-H "$2")
    t0=$(front_ticks)
    out=$(timeout $(( DURATION + 60 )) wrk -t "$WRK_THREADS" -c "$CONNS" -d "$DURATION" --latency \
        "${h[@]}" "http://$HOST:${PORT[$peer]}/" 2>&1)
    t1=$(front_ticks)
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
    n=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
    errs=$(printf '%s\n' "$out" | grep -E 'Non-2xx|Socket errors' | tr -s ' ' | tr '\n' ';')
    if [ -z "$rps" ] || [ -z "$n" ] || [ "$n" = 0 ] || printf '%s' "$errs" | grep -q Non-2xx; then
        err "$peer: $k failed: $(printf '%s\n' "$out" | tail -n 3 | tr '\n' ' ')"
        FAILED[$k,$peer]=1
        return
    fi
    add "$k.rps" "$(calc '%.0f' "$rps")"
    add "$k.p50" "$(us "$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')")"
    add "$k.p99" "$(us "$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')")"
    sum "$k.n" "$n"
    sum "$k.ticks" $(( t1 - t0 ))
    say "   $k $peer: $n requests, $(calc '%.0f' "$rps") req/s, p99 $(us "$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')") us${errs:+ ($errs)}"
}

# big: one download of /big with curl on $peer's route: a sample of big (MiB/s), the front CPU
# ticks in SUM; FAILED[big,$peer] when it came short
big() {
    local out t0 t1
    t0=$(front_ticks)
    out=$(timeout 300 curl -sS -o /dev/null -w '%{size_download} %{time_total}' \
        "http://$HOST:${PORT[$peer]}/big") || true
    t1=$(front_ticks)
    # shellcheck disable=SC2086  # size and seconds
    set -- $out
    if [ "${1:-0}" != "$BIG_BYTES" ]; then
        err "$peer: /big: ${1:-0} of $BIG_BYTES bytes"; FAILED[big,$peer]=1; return
    fi
    add big "$(calc '%.1f' "$1 / 1048576 / $2")"
    sum big.ticks $(( t1 - t0 ))
    say "   big $peer: $(calc '%.1f' "$1 / 1048576 / $2") MiB/s"
}

# start_route ROUTE: its server (none for direct), ready and checked: PORT and FRONT for it
start_route() {
    local peer=$1 pid body
    new_case "$peer"
    if ! "start_$peer"; then err "$peer: cannot start"; return 1; fi
    pid=${SERVER_PID:-$SITE_PID}
    [ -n "$SERVER_PID" ] && started "$SERVER_PID"
    wait_ready "$peer: port %s not ready (%s); output:" "$U_ECHO" "$FPORT" || return 1
    PORT[$peer]=$FPORT
    FRONT[$peer]=$pid
    # the same bytes as from the website itself
    body=$(curl -sS "http://$HOST:$FPORT/" | cksum)
    [ "$body" = "$(cksum <"$SITE/www/index.html")" ] || err "$peer: / differs from the website's file"
    say "   $peer: port $FPORT, front pid $pid ($(tree_pids "$pid" | wc -l) process(es))"
}

# -------------------------------------------------------------------------------------- run

say "wharf fallback benchmark: a website directly, through wharf's fallback, through nginx's proxy_pass with and without a pool"
say "command: SMALL_BYTES=$SMALL_BYTES BIG_BYTES=$BIG_BYTES BIG_REPEAT=$BIG_REPEAT ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS WRK_THREADS=$WRK_THREADS PEERS=\"$PEERS\" NGINX_KEEPALIVE=$NGINX_KEEPALIVE bench/fallback.sh${*:+ $*}"
PEERS="wharf nginx" machine_header loadavg
say "  wrk: $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2); curl: $(curl -V | head -n 1 | cut -d' ' -f1-2)"
say "setup: 127.0.0.1 only; the website, wharf and the nginx proxy with one worker each; wrk -t $WRK_THREADS -c $CONNS"
say "front cpu = utime+stime of the server in front (wharf or the nginx proxy, master + worker; direct: the website)"
say ""

D=$WORK/site
pid=$SITE_PID
wait_ready "website: port %s not ready (%s); output:" "$P_SITE" || exit 1
say "routes:"
ROUTES=""
for peer in $PEERS; do
    if start_route "$peer"; then ROUTES="$ROUTES $peer"; else err "$peer: skipped"; fi
done
pid=""

# a warm-up of each route, then the rounds
for peer in $ROUTES; do
    timeout 60 wrk -t "$WRK_THREADS" -c "$CONNS" -d 1 "http://$HOST:${PORT[$peer]}/" >/dev/null 2>&1
done
for round in $(seq 1 "$ROUNDS"); do
    say "round $round:"
    for peer in $ROUTES; do small ka; done
    for peer in $ROUTES; do small new "Connection: close"; done
done
say "downloads of /big:"
for round in $(seq 1 "$BIG_REPEAT"); do
    for peer in $ROUTES; do big; done
done

# the figures: medians of the samples, front CPU per request and per GiB
for peer in $ROUTES; do
    for k in ka new; do
        for f in rps p50 p99; do
            # shellcheck disable=SC2086  # the samples
            [ -z "${FAILED[$k,$peer]:-}" ] && R[$k.$f,$peer]=$(median ${VALS[$k.$f,$peer]:-})
        done
        [ -z "${FAILED[$k,$peer]:-}" ] &&
            R[$k.cpu,$peer]=$(calc '%.1f' "${SUM[$k.ticks,$peer]} * 1000000 / $CLK_TCK / ${SUM[$k.n,$peer]}")
    done
    if [ -z "${FAILED[big,$peer]:-}" ]; then
        # shellcheck disable=SC2086  # the samples
        R[big,$peer]=$(median ${VALS[big,$peer]})
        R[bigcpu,$peer]=$(calc '%.3f' "${SUM[big.ticks,$peer]} / $CLK_TCK / ($BIG_REPEAT * $BIG_BYTES / 1073741824)")
    fi
done

# ----------------------------------------------------------------------------------- table
say ""
say "medians of $ROUNDS rounds ($BIG_REPEAT downloads); cpu over all of them"
NAME_W=30 CELL_W=10
fmt_row figure direct wharf nginx pooled w/nginx w/pooled
for f in ka.rps ka.p50 ka.p99 ka.cpu new.rps new.p50 new.p99 new.cpu big bigcpu; do
    case $f in
    ka.rps) name="keep-alive req/s" ;; ka.p50) name="keep-alive p50 us" ;;
    ka.p99) name="keep-alive p99 us" ;; ka.cpu) name="keep-alive front cpu us/req" ;;
    new.rps) name="new conn req/s" ;; new.p50) name="new conn p50 us" ;;
    new.p99) name="new conn p99 us" ;; new.cpu) name="new conn front cpu us/req" ;;
    big) name="/big MiB/s" ;; bigcpu) name="/big front cpu s/GiB" ;;
    esac
    fmt_row "$name" "$(val $f direct)" "$(val $f wharf)" "$(val $f nginx)" "$(val $f pooled)" \
        "$(ratio $f nginx)" "$(ratio $f pooled)"
done

say ""
say "targets (through wharf >= through nginx's proxy_pass; pooled is for reference):"
TARGET_W=34
target "keep-alive req/s >= nginx" ka.rps ge nginx 1
target "keep-alive p99 <= nginx" ka.p99 le nginx 1
target "new conn req/s >= nginx" new.rps ge nginx 1
target "new conn p99 <= nginx" new.p99 le nginx 1
target "/big MiB/s >= nginx" big ge nginx 1
exit 0
