# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (SC2034, SC2153, SC2154: variables set here for the scripts, or set by them for these functions)
# bench/lib.sh: what bench/tcp.sh, tls.sh, ws.sh and h2.sh share. Each sources it first thing after
# its header comment:   . "$(dirname "$0")/lib.sh"
# Sourcing it sets the shell options and a few constants (ROOT, HOST, WHARF, PY, CLK_TCK) and defines
# functions; it runs nothing else. A script then sets its knobs and calls, in order: check_list,
# need_* (setup errors exit 1), raise_nofile, make_work, build_loadgen, fixture_cert (ws, h2).
#
# Conventions shared with the scripts:
#   R               the figures, R[KEY,PEER] (an associative array, declared here)
#   PEERS           the peers of the run, a blank-separated list
#   D               the current case's directory (new_case)
#   $pid, $cpid     in the function running a case: the server's pid and the V2Ray client's (empty or
#                   unset when there is none); wait_ready, idle_rss and bulk_pair read them
#   $peer           in that function too: the peer the figures are for (bulk_pair, avg_updown)
#   NAME_W, CELL_W  column widths of fmt_row; TARGET_W the name width of target

set -u
export LC_ALL=C
declare -A R   # the figures, R[KEY,PEER]; each script says what its KEYs are

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
WHARF=$ROOT/objs/wharf
PY=/usr/bin/python3
CLK_TCK=$(getconf CLK_TCK)
ME=${0##*/}              # tcp.sh, tls.sh, ... in messages
V2RAY_VERSION_FIELDS=1-2 # fields of "v2ray -version" that version_of prints

say() { printf '%s\n' "$*"; }
err() { printf '%s: %s\n' "$ME" "$*" >&2; }

# "2g", "512m", "64k" or plain bytes
to_bytes() {
    case $1 in
    *[kK]) echo $(( ${1%?} << 10 )) ;; *[mM]) echo $(( ${1%?} << 20 )) ;;
    *[gG]) echo $(( ${1%?} << 30 )) ;; *) echo $(( $1 )) ;;
    esac
}

in_list() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }   # in_list "LIST" WORD
has_peer() { in_list "$PEERS" "$1"; }

# ------------------------------------------------------------ set-up checks (exit 1 on failure)

check_list() {   # check_list WHAT "LIST" "KNOWN"
    local p
    for p in $2; do
        case " $3 " in *" $p "*) ;; *) err "unknown $1 '$p' (known: $3)"; exit 1 ;; esac
    done
}

# need_wharf HINT: objs/wharf when PEERS has wharf; HINT says how to run without it
need_wharf() {
    if has_peer wharf && [ ! -x "$WHARF" ]; then
        err "objs/wharf not found: run ./configure && make at the repository root first"
        err "($1)"
        exit 1
    fi
}

# need_peers PEER...: the command of each of these that is in PEERS
need_peers() {
    local p
    for p in "$@"; do
        if has_peer "$p" && ! command -v "$p" >/dev/null 2>&1; then
            err "$p is not installed (apt-get install $p), or drop it from PEERS"
            exit 1
        fi
    done
}

need_cmd() {   # need_cmd COMMAND MESSAGE
    command -v "$1" >/dev/null 2>&1 || { err "$2"; exit 1; }
}

# need_fixtures CASE...: interop/render.sh, mkcert.sh and cases/CASE/{client,server}.json under
# $SHARED, and python3 (merge_v2ray)
need_fixtures() {
    local c f
    local -a files=(render.sh mkcert.sh)
    for c in "$@"; do files+=("cases/$c/client.json" "cases/$c/server.json"); done
    for f in "${files[@]}"; do
        if [ ! -r "$SHARED/interop/$f" ]; then
            err "$SHARED/interop/$f not found (set WHARF_SHARED to the folder holding interop/)"; exit 1
        fi
    done
    if [ ! -x "$PY" ]; then err "$PY not found (apt-get install python3)"; exit 1; fi
}

# ----------------------------------------------------------------------------------- set-up

# raise_nofile STREAMS: file descriptors for STREAMS idle streams; clients, relays (2 per stream) and
# upstreams all inherit this
raise_nofile() {
    local hard want
    hard=$(ulimit -Hn)
    want=$(( $1 * 4 + 4096 ))
    [ "$want" -lt 65536 ] && want=65536
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
        ulimit -Hn "$want" 2>/dev/null || want=$hard
    fi
    ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# make_work PREFIX: WORK, a fresh temporary directory, removed at exit once every pid in STARTED
# (see started) is killed and reaped
make_work() {
    WORK=$(mktemp -d -t "$1.XXXXXX") || exit 1
    chmod 755 "$WORK"   # workers may run as an unprivileged user
    STARTED=""
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    local pid
    for pid in $STARTED; do kill "$pid" 2>/dev/null; done
    for pid in $STARTED; do wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
started() { STARTED="$STARTED $*"; }   # started PID...: for cleanup

# build_loadgen [tls]: LG, bench/loadgen.c built into WORK; "tls": with OpenSSL (-DLOADGEN_TLS)
# shellcheck disable=SC2120  # optional arguments
build_loadgen() {
    LG=$WORK/loadgen
    if [ "${1:-}" = tls ]; then
        if ! cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -DLOADGEN_TLS -o "$LG" "$ROOT/bench/loadgen.c" \
                -lssl -lcrypto; then
            err "cannot build bench/loadgen.c with OpenSSL (apt-get install libssl-dev)"
            exit 1
        fi
    elif ! cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o "$LG" "$ROOT/bench/loadgen.c"; then
        err "cannot build bench/loadgen.c"
        exit 1
    fi
}

# fixture_cert: CERT and KEY, a fresh self-signed certificate from the fixtures' interop/mkcert.sh;
# the key stays in $WORK
fixture_cert() {
    if ! sh "$SHARED/interop/mkcert.sh" "$WORK/pki" >/dev/null 2>"$WORK/mkcert.err"; then
        err "cannot make a certificate:"; cat "$WORK/mkcert.err" >&2; exit 1
    fi
    chmod 755 "$WORK/pki"
    chmod 644 "$WORK/pki/cert.pem" "$WORK/pki/key.pem"   # readable by unprivileged workers; dies with the run
    CERT=$WORK/pki/cert.pem
    KEY=$WORK/pki/key.pem
}

# p256_cert: CERT and KEY, a fresh self-signed P-256 certificate (as the interop fixtures' mkcert.sh,
# without needing them), and both in $WORK/haproxy.pem; the key stays in $WORK
p256_cert() {
    CERT=$WORK/cert.pem
    KEY=$WORK/key.pem
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 30 \
            -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -addext "extendedKeyUsage=serverAuth" -keyout "$KEY" -out "$CERT" 2>"$WORK/openssl.err"; then
        err "cannot make a certificate:"; cat "$WORK/openssl.err" >&2; exit 1
    fi
    chmod 644 "$CERT" "$KEY"   # readable by unprivileged workers; the directory dies with the run
    cat "$CERT" "$KEY" >"$WORK/haproxy.pem"
}

# ---------------------------------------------------------------------------------- helpers

# free TCP port below the ephemeral range, not listening and not used before in this run; from
# PORT_MIN (default 20000), among PORT_COUNT ports (default 12000). Callers take it as $(free_port),
# a subshell, so the ports handed out are remembered in a file of the run, not in a variable.
free_port() {
    local p listening used
    listening=$(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u | tr '\n' ' ')
    used=$(tr '\n' ' ' 2>/dev/null <"$WORK/ports.used")
    while :; do
        p=$(( ${PORT_MIN:-20000} + RANDOM % ${PORT_COUNT:-12000} ))
        case " $listening $used " in *" $p "*) continue ;; esac
        echo "$p" >>"$WORK/ports.used"
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
        # shellcheck disable=SC2086  # split into fields on purpose
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
# shellcheck disable=SC2059  # calc FORMAT EXPRESSION: awk's printf
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# --------------------------------------------------------------------------------- cases

# new_case NAME: D=$WORK/NAME, fresh ports for the upstreams (U_SINK, U_SOURCE, U_ECHO) and for the
# server (P_UP, P_DOWN, P_RR), and the loadgen sink, source and echo upstreams; their pids: LGPIDS (array).
# UPSTREAM_PROCS (default 1): processes of each upstream, sharing its port (SO_REUSEPORT); CONN_PORTS
# (default 0): that many more echo listeners, tags c0, c1, ... (ports P_CONN[i] -> U_CONN[i])
new_case() {
    local i k
    D=$WORK/$1
    mkdir -p "$D"
    chmod 755 "$D"
    U_SINK=$(free_port); U_SOURCE=$(free_port); U_ECHO=$(free_port)
    P_UP=$(free_port); P_DOWN=$(free_port); P_RR=$(free_port)
    P_CONN=(); U_CONN=()
    for (( i = 0; i < ${CONN_PORTS:-0}; i++ )); do P_CONN+=("$(free_port)"); U_CONN+=("$(free_port)"); done

    LGPIDS=()
    for (( k = 0; k < ${UPSTREAM_PROCS:-1}; k++ )); do
        "$LG" sink "$U_SINK" 2>>"$D/upstreams.err" & LGPIDS+=($!)
        "$LG" source "$U_SOURCE" 2>>"$D/upstreams.err" & LGPIDS+=($!)
        "$LG" echo "$U_ECHO" 2>>"$D/upstreams.err" & LGPIDS+=($!)
        for i in "${U_CONN[@]}"; do "$LG" echo "$i" 2>>"$D/upstreams.err" & LGPIDS+=($!); done
    done
    started "${LGPIDS[@]}"
}

# the server port and the upstream port of the listener TAG (up, down, rr or c<i>)
tag_port() {
    case $1 in up) echo "$P_UP" ;; down) echo "$P_DOWN" ;; rr) echo "$P_RR" ;; c*) echo "${P_CONN[${1#c}]}" ;; esac
}
tag_upstream() {
    case $1 in up) echo "$U_SINK" ;; down) echo "$U_SOURCE" ;; rr) echo "$U_ECHO" ;; c*) echo "${U_CONN[${1#c}]}" ;; esac
}

# wait_ready FORMAT EP...: each EP (a port on $HOST, "HOST PORT" or "unix:PATH 0") accepts within 10 s
# while $pid (and $cpid, when set) live; else the error printf FORMAT EP "dead"|"not listening", the
# last lines of the server's (and client's) output, and status 1
wait_ready() {
    local fmt=$1 ep t i
    shift
    for ep in "$@"; do
        case $ep in *" "*) t=$ep ;; *) t="$HOST $ep" ;; esac
        for i in $(seq 1 100); do
            if ! kill -0 "$pid" 2>/dev/null || { [ -n "${cpid:-}" ] && ! kill -0 "$cpid" 2>/dev/null; }; then
                i=dead; break
            fi
            # shellcheck disable=SC2086  # "HOST PORT"
            "$LG" wait $t 0 2>/dev/null && break
            sleep 0.1
        done
        if [ "$i" = dead ] || [ "$i" = 100 ]; then
            # shellcheck disable=SC2059
            err "$(printf "$fmt" "$ep" "${i/100/not listening}")"
            tail -n 20 "$D/stderr" "$D/error.log" "$D/client.stderr" >&2 2>/dev/null
            return 1
        fi
    done
}

stop_pids() { kill "$@" 2>/dev/null; wait "$@" 2>/dev/null; }   # stop_pids PID...

# idle_rss TRIES OUT HOOK LOADGEN-ARGS...: RSS0, the RSS (KiB) of $pid's tree, then loadgen
# LOADGEN-ARGS (an idle test) in the background, its output in OUT; once OUT says "established"
# (polled every 0.1 s, at most TRIES times) RSS1, 1 s later, and the command HOOK (":" for none);
# RSS1 stays empty when that never happened. Returns loadgen's status.
idle_rss() {
    local tries=$1 out=$2 hook=$3 lg
    shift 3
    RSS0=$(rss_kib "$pid")
    timeout $(( IDLE_HOLD + 120 )) "$LG" "$@" >"$out" 2>&1 &
    lg=$!
    RSS1=""
    for _ in $(seq 1 "$tries"); do
        if grep -q established "$out" 2>/dev/null; then
            sleep 1
            RSS1=$(rss_kib "$pid")
            "$hook"
            break
        fi
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    wait "$lg"
}

# bulk_pair PREFIX WHO BYTES: BULK_REPEAT transfers of BYTES each way, "$LG" "${BULK_UP[@]}" BYTES
# and "$LG" "${BULK_DOWN[@]}" BYTES, each one's line said, with the CPU time of $pid (and of $cpid,
# when set) around each. Sets for $peer: R[PREFIXup], R[PREFIXdown] (median MiB/s), R[PREFIXcpuup],
# R[PREFIXcpudown], R[PREFIXcpu] (s/GiB, cpu = their mean) and, with a client, its R[PREFIXccpu*]
# (s/GiB) and R[PREFIXcbusy*] (busy cores); empty when a transfer failed. WHO prefixes the errors.
bulk_pair() {
    local pre=$1 who=$2 bytes=$3 dir i out t0 t1 c0 c1 vals ticks cticks secs n ok
    local client=${cpid:-}
    for dir in up down; do
        vals=""; ticks=0; cticks=0; secs=0; n=0; ok=1
        for i in $(seq 1 "$BULK_REPEAT"); do
            t0=$(cpu_ticks "$pid")
            [ -n "$client" ] && c0=$(cpu_ticks "$client")
            if [ $dir = up ]; then
                out=$(timeout 120 "$LG" "${BULK_UP[@]}" "$bytes") || { err "$who: bulk-up failed"; ok=0; }
            else
                out=$(timeout 120 "$LG" "${BULK_DOWN[@]}" "$bytes") || { err "$who: bulk-down failed"; ok=0; }
            fi
            sleep 0.1
            t1=$(cpu_ticks "$pid")
            [ -n "$client" ] && { c1=$(cpu_ticks "$client"); cticks=$(( cticks + c1 - c0 )); }
            say "   $out"
            ticks=$(( ticks + t1 - t0 )); n=$(( n + 1 ))
            vals="$vals $(printf '%s\n' "$out" | kv mibps)"
            [ -n "$client" ] && secs=$(calc '%.4f' "$secs + 0$(printf '%s\n' "$out" | kv seconds)")
        done
        R[$pre$dir,$peer]=""; R[${pre}cpu$dir,$peer]=""; R[${pre}ccpu$dir,$peer]=""; R[${pre}cbusy$dir,$peer]=""
        if [ $ok = 1 ]; then
            # shellcheck disable=SC2086  # the values
            R[$pre$dir,$peer]=$(median $vals)
            R[${pre}cpu$dir,$peer]=$(calc '%.3f' "$ticks / $CLK_TCK / ($n * $bytes / 1073741824)")
            if [ -n "$client" ]; then
                R[${pre}ccpu$dir,$peer]=$(calc '%.3f' "$cticks / $CLK_TCK / ($n * $bytes / 1073741824)")
                R[${pre}cbusy$dir,$peer]=$(calc '%.2f' "$cticks / $CLK_TCK / $secs")
            fi
        fi
    done
    avg_updown "$pre" cpu ccpu
}

# avg_updown PREFIX FIG...: R[PREFIXFIG] = the mean of R[PREFIXFIGup] and R[PREFIXFIGdown] for $peer,
# empty unless both are there
avg_updown() {
    local pre=$1 f
    shift
    for f in "$@"; do
        if [ -n "${R[$pre${f}up,$peer]:-}" ] && [ -n "${R[$pre${f}down,$peer]:-}" ]; then
            R[$pre$f,$peer]=$(calc '%.3f' "(${R[$pre${f}up,$peer]} + ${R[$pre${f}down,$peer]}) / 2")
        else
            R[$pre$f,$peer]=""
        fi
    done
}

# ------------------------------------------------------------------------------------ servers
# Each start function writes its config into $D, starts the server in the foreground (in the
# background of the script) and sets SERVER_PID (CLIENT_PID for a V2Ray client).

# wharf_conf LISTENER...: $D/wharf.conf, WORKERS workers (default 1), user nobody, logs in $D, these listeners, and
# the global directives in WHARF_GLOBALS (lines; none when unset)
wharf_conf() {
    local l first=1
    {
        printf 'daemon = false;\nworker_processes = %s;\nuser = "nobody";\npid = "wharf.pid";\n' "${WORKERS:-1}"
        [ -n "${WHARF_GLOBALS:-}" ] && printf '%s\n' "$WHARF_GLOBALS"
        printf 'error_log = "error.log";\nlog_level = "error";\nlisteners = (\n'
        for l in "$@"; do
            [ $first = 1 ] || printf ',\n'
            first=0
            printf '  %s' "$l"
        done
        printf '\n);\n'
    } >"$D/wharf.conf"
}

# wharf_run: wharf -t on $D/wharf.conf, then wharf itself
wharf_run() {
    if ! "$WHARF" -t -p "$D" -c "$D/wharf.conf" >"$D/test.out" 2>&1; then
        err "wharf -t failed:"; cat "$D/test.out" >&2; return 1
    fi
    "$WHARF" -p "$D" -c "$D/wharf.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# wharf_start STREAM TAG...: wharf with a listener on $HOST:tag_port -> $HOST:tag_upstream for each
# TAG, with streamSettings = { STREAM }
wharf_start() {
    local ss=$1 tag
    local -a l=()
    shift
    for tag in "$@"; do
        l+=("{ tag = \"$tag\"; listen = \"$HOST\"; port = $(tag_port "$tag"); upstream = \"$HOST:$(tag_upstream "$tag")\";
    streamSettings = { $ss }; }")
    done
    wharf_conf "${l[@]}"
    wharf_run
}

# wharf's tlsSettings with CERT and KEY
wharf_tls_settings() {
    printf 'tlsSettings = { certificates = ( { certificateFile = "%s"; keyFile = "%s"; } ); };' "$CERT" "$KEY"
}

# nginx_stream_module [ssl]: NGINX_LOAD, the load_module line of the stream module (if dynamic);
# "ssl": the stream ssl module too
NGINX_LOAD=""
# shellcheck disable=SC2120  # optional arguments
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
    if [ "${1:-}" = ssl ]; then
        case "$v" in
        *--with-stream_ssl_module*) ;;
        *) err "this nginx has no stream ssl module"; return 1 ;;
        esac
    fi
}

# nginx_start LISTEN_OPTS [DIRECTIVE...]: nginx, WORKERS workers (default 1), a stream server for each
# of TAGS (default up, down and rr; "listen $HOST:PORT LISTEN_OPTS"), the DIRECTIVEs at the top of the stream block;
# worker_connections NGINX_WORKER_CONNECTIONS (default 20000); the main-context directives in NGINX_GLOBALS
# (lines; none when unset)
nginx_start() {
    local opts=$1 t
    shift
    {
        [ -n "$NGINX_LOAD" ] && printf '%s\n' "$NGINX_LOAD"
        printf 'daemon off;\nmaster_process on;\nworker_processes %s;\nworker_rlimit_nofile %s;\n' \
            "${WORKERS:-1}" "$(ulimit -n)"
        [ -n "${NGINX_GLOBALS:-}" ] && printf '%s\n' "$NGINX_GLOBALS"
        printf 'pid %s/nginx.pid;\nerror_log %s/error.log error;\n' "$D" "$D"
        printf 'events { worker_connections %s; }\nstream {\n' "${NGINX_WORKER_CONNECTIONS:-20000}"
        for t in "$@"; do printf '    %s\n' "$t"; done
        for t in ${TAGS:-up down rr}; do
            printf '    server { listen %s:%s%s; proxy_pass %s:%s; }\n' \
                "$HOST" "$(tag_port "$t")" "$opts" "$HOST" "$(tag_upstream "$t")"
        done
        printf '}\n'
    } >"$D/nginx.conf"
    nginx -e "$D/error.log" -p "$D" -c "$D/nginx.conf" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# haproxy_start BIND_OPTS [GLOBAL...]: haproxy, WORKERS threads (default 1), mode tcp, a listen section
# for each of TAGS (default up, down and rr; "bind $HOST:PORT BIND_OPTS"), the GLOBAL lines added to its global section; maxconn
# HAPROXY_MAXCONN (default: what ulimit -n allows), the lines of HAPROXY_DEFAULTS (when set) at the
# end of the defaults section (a later timeout there replaces an earlier one)
haproxy_start() {
    local opts=$1 t
    shift
    {
        printf 'global\n    nbthread %s\n    maxconn %s\n' "${WORKERS:-1}" "${HAPROXY_MAXCONN:-$(( ($(ulimit -n) - 200) / 2 ))}"
        for t in "$@"; do printf '    %s\n' "$t"; done
        printf 'defaults\n    mode tcp\n    timeout connect 10s\n    timeout client 1h\n    timeout server 1h\n'
        [ -n "${HAPROXY_DEFAULTS:-}" ] && printf '%s\n' "$HAPROXY_DEFAULTS" | sed 's/^/    /'
        for t in ${TAGS:-up down rr}; do
            printf 'listen %s\n    bind %s:%s%s\n    server s %s:%s\n' \
                "$t" "$HOST" "$(tag_port "$t")" "$opts" "$HOST" "$(tag_upstream "$t")"
        done
    } >"$D/haproxy.cfg"
    haproxy -db -f "$D/haproxy.cfg" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# v2ray_conf "TAG PORT UPSTREAM STREAMSETTINGS"...: v2ray with a dokodemo-door inbound for each,
# $HOST:PORT -> $HOST:UPSTREAM, streamSettings the JSON STREAMSETTINGS
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

# render CASE client|server OUT: the fixture interop/cases/CASE/ROLE.json, with SERVER_PORT,
# UPSTREAM_PORT, LOCAL_PORT in the environment
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

# v2ray_fixture_server CASE: v2ray (GOMAXPROCS=V2RAY_GOMAXPROCS) as the fixture's server, P_UP ->
# U_SINK, P_DOWN -> U_SOURCE, P_RR -> U_ECHO
v2ray_fixture_server() {
    SERVER_PORT=$P_UP UPSTREAM_PORT=$U_SINK render "$1" server "$D/server-up.json" &&
    SERVER_PORT=$P_DOWN UPSTREAM_PORT=$U_SOURCE render "$1" server "$D/server-down.json" &&
    SERVER_PORT=$P_RR UPSTREAM_PORT=$U_ECHO render "$1" server "$D/server-rr.json" &&
    merge_v2ray server "$D/server.json" up="$D/server-up.json" down="$D/server-down.json" \
        rr="$D/server-rr.json" || return 1
    GOMAXPROCS=$V2RAY_GOMAXPROCS v2ray -config "$D/server.json" >"$D/stdout" 2>"$D/stderr" &
    SERVER_PID=$!
}

# v2ray_fixture_client CASE: v2ray (GOMAXPROCS=CLIENT_GOMAXPROCS) as the fixture's client, L_UP ->
# P_UP, L_DOWN -> P_DOWN, L_RR -> P_RR; sets CLIENT_PID
v2ray_fixture_client() {
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
    nginx) nginx -v 2>&1 | head -n 1 ;;
    haproxy) haproxy -v 2>&1 | head -n 1 | cut -d' ' -f1-3 ;;
    v2ray) v2ray -version 2>&1 | head -n 1 | cut -d' ' -f"$V2RAY_VERSION_FIELDS" ;;
    esac
}

# machine_header [aes] [loadavg]: the "machine:" line (with the CPU's AES flag, the load average)
# and a line with the version of each of PEERS
# shellcheck disable=SC2120  # optional arguments
machine_header() {
    local s p
    s="machine: nproc=$(nproc) kernel=$(uname -sr) cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)\""
    in_list "$*" aes && s="$s aes=$(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
    s="$s ulimit-n=$(ulimit -n)"
    in_list "$*" loadavg && s="$s loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
    say "$s"
    for p in $PEERS; do say "  $p: $(version_of "$p")"; done
}

# ------------------------------------------------------------------------- tables and targets

# fmt_row NAME CELL...: NAME left-aligned in NAME_W columns, each CELL right-aligned in CELL_W
fmt_row() {
    printf "%-${NAME_W}s" "$1"
    shift
    printf " %${CELL_W}s" "$@"
    printf '\n'
}

# val KEY PEER [PEERLIST]: R[KEY,PEER], or "-" when empty or PEER is not in PEERLIST (default PEERS)
val() {
    local v=${R[$1,$2]:-}
    if in_list "${3-$PEERS}" "$2" && [ -n "$v" ]; then echo "$v"; else echo "-"; fi
}

# ratio KEY PEER [PEERLIST]: wharf's R[KEY] / PEER's, or "-"
ratio() {
    local a=${R[$1,wharf]:-} b=${R[$1,$2]:-} pl=${3-$PEERS}
    if [ -z "$a" ] || [ -z "$b" ] || ! in_list "$pl" wharf || ! in_list "$pl" "$2"; then echo "-"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'
}

# verdict KEY OP REF FACTOR [PEERLIST]: wharf's R[KEY] (V_WHARF) OP (ge or le) FACTOR x REF's R[KEY]
# (V_LIMIT; REF "-": FACTOR itself): V = PASS or MISS; status 1 when a figure or a peer is missing
verdict() {
    local f=$1 op=$2 ref=$3 k=$4 pl=${5-$PEERS}
    V_WHARF=${R[$f,wharf]:-}
    if [ "$ref" = - ]; then V_LIMIT=$k; else V_LIMIT=${R[$f,$ref]:-}; fi
    if [ -z "$V_WHARF" ] || [ -z "$V_LIMIT" ] || ! in_list "$pl" wharf ||
            { [ "$ref" != - ] && ! in_list "$pl" "$ref"; }; then
        return 1
    fi
    [ "$ref" = - ] || V_LIMIT=$(awk -v b="$V_LIMIT" -v k="$k" 'BEGIN { printf "%.6g", b * k }')
    V=$(awk -v a="$V_WHARF" -v b="$V_LIMIT" -v op="$op" 'BEGIN {
        ok = (op == "ge") ? (a >= b) : (a <= b); print ok ? "PASS" : "MISS" }')
}

# verdict_text KEY OP REF FACTOR [PEERLIST]: "PASS (wharf A, limit B)", "MISS (...)" or "n/a"
verdict_text() {
    if verdict "$@"; then echo "$V (wharf $V_WHARF, limit $V_LIMIT)"; else echo "n/a"; fi
}

# target NAME KEY OP REF FACTOR [PEERLIST]: a line of the targets, NAME in TARGET_W columns
target() {
    local name=$1
    shift
    if verdict "$@"; then
        printf "  %-${TARGET_W}s %s  (wharf %s, limit %s)\n" "$name" "$V" "$V_WHARF" "$V_LIMIT"
    else
        printf "  %-${TARGET_W}s n/a\n" "$name"
    fi
}
