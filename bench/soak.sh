#!/usr/bin/env bash
# wharf reload soak: RELOADS reloads of one master while every transport carries live, verified
# traffic. One wharf (worker_processes 2, shutdown_timeout long enough that no stream is cut by it)
# serves one listener per transport -- the interop fixtures tcp, tcp-tls, ws-tls, h2 (TLS), quic and
# kcp, their server.json's streamSettings carried over as wharf.conf takes them -- and one real V2Ray
# client (the Debian v2ray, one process, the fixtures' client.json: a dokodemo-door in front of each
# transport) carries the streams:
#   download.py loop (CLIENTS threads per transport) -> v2ray client -> wharf -> download.py serve
# Each client thread runs streams one after another; each asks for between SIZE/2 and SIZE bytes of
# a seeded random content, which the upstream sends and then closes on, and checks every byte
# (tests/integration/download.py). Besides, a connect loop opens a new connection to the plain tcp
# listener over and over (asks for 64 bytes, checks them and the end of stream, closes, pauses 10 ms).
# After WARMUP seconds of traffic: BEFORE seconds measured, then RELOADS reloads, one every INTERVAL
# seconds on average (each at a random point of its own INTERVAL), then AFTER seconds measured; then
# the clients end the stream they are in and stop, and the old workers get DRAIN seconds to exit.
#   Good reloads (`wharf -s reload`) alternate adding and removing a listener on another port;
#   every tenth reload (SIGHUP, since `wharf -s reload` itself refuses a broken file) carries a broken
#   file instead, an unknown directive and a syntax error in turn: it must be refused with
#   "wharf.conf:LINE" in the error log and leave the workers as they were.
#
# Broken stream: one that did not end with exactly the bytes asked for -- a byte differs, it ended
# early (EOF or reset) or it did not end within STREAM_TIMEOUT. Failed connect: refused, or any other
# error, or a wrong or short answer, on the connect loop.
#
# Usage: bench/soak.sh           (from anywhere; the repo root is found from this file)
# Env:   RELOADS          reloads (default 100; every tenth is a broken config)
#        INTERVAL         mean seconds between reloads (default 1.5)
#        CLIENTS          client threads per transport (default 8)
#        TRANSPORTS       subset of "tcp tcp-tls ws-tls h2 quic kcp" (default all)
#        SIZE             largest stream, bytes ("4m"; default 4m); each is SIZE/2 .. SIZE
#        WARMUP, BEFORE, AFTER   seconds (defaults 5, 15, 15)
#        DRAIN            seconds the old workers get to exit at the end (default 30)
#        STREAM_TIMEOUT   seconds one stream may take (default 120)
#        WHARF            the binary (default $WHARF_BIN, else objs/wharf); wharf inherits this
#                         environment (a sanitizer build's ASAN_OPTIONS, say)
#        WHARF_SHARED     the shared folder with interop/ (default ../shared relative to the repo root)
#        KEEP             set to keep the work folder (configs, logs, client output) for a look
# Output: per transport and in all, streams completed and broken and throughput (MiB/s, all clients
# together, by bytes received) before, during and after the reloads; connects done and refused or
# failed; worker processes at the end; broken configs refused; then PASS/MISS per target.
# Exit status: 0 when the run completed and every target held, 1 on setup errors, 2 when a target
# missed.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

SHARED=${WHARF_SHARED:-$ROOT/../shared}
WHARF=${WHARF:-${WHARF_BIN:-$ROOT/objs/wharf}}
RELOADS=${RELOADS:-100}
INTERVAL=${INTERVAL:-1.5}
CLIENTS=${CLIENTS:-8}
ALL_TRANSPORTS="tcp tcp-tls ws-tls h2 quic kcp"
TRANSPORTS=${TRANSPORTS:-$ALL_TRANSPORTS}
SIZE=${SIZE:-4m}
WARMUP=${WARMUP:-5}
BEFORE=${BEFORE:-15}
AFTER=${AFTER:-15}
DRAIN=${DRAIN:-30}
STREAM_TIMEOUT=${STREAM_TIMEOUT:-120}
WORKERS=2
SHUTDOWN_TIMEOUT=900    # longer than the whole run: no stream is cut by it
DOWNLOAD=$ROOT/tests/integration/download.py
PEERS=wharf

SIZE=$(to_bytes "$SIZE") || exit 1
check_list transport "$TRANSPORTS" "$ALL_TRANSPORTS"
in_list "$TRANSPORTS" tcp || { err "TRANSPORTS must hold tcp: the connect loop uses its listener"; exit 1; }
if [ ! -x "$WHARF" ]; then
    err "$WHARF not found: run ./configure && make at the repository root first (or set WHARF)"
    exit 1
fi
need_cmd v2ray "v2ray is not installed (apt-get install v2ray): it is the client"
# shellcheck disable=SC2086  # the list
need_fixtures $TRANSPORTS
[ -r "$DOWNLOAD" ] || { err "$DOWNLOAD not found"; exit 1; }
[ "$(id -u)" = 0 ] || { err "run as root: the workers switch to user nobody"; exit 1; }

raise_nofile $(( CLIENTS * 6 * 4 ))
make_work wharf-soak
[ -n "${KEEP:-}" ] && trap 'cleanup_keep' EXIT
# shellcheck disable=SC2317  # called by the trap
cleanup_keep() { WORK_KEPT=$WORK; WORK=/nonexistent; cleanup; err "work folder kept: $WORK_KEPT"; }
build_loadgen
fixture_cert
D=$WORK/run
mkdir -p "$D" && chmod 755 "$D"

now() { date +%s.%N; }
declare -A P L U            # per transport: wharf's port, the v2ray client's, the upstream's
for t in $TRANSPORTS; do P[$t]=$(free_port); L[$t]=$(free_port); U[$t]=$(free_port); done
P_EXTRA=$(free_port)

# listeners_conf OUT TAG=PORT:UPSTREAM:SERVER.JSON...: wharf.conf listener groups, each with the
# streamSettings of the fixture's V2Ray server (wharf keeps V2Ray's names)
listeners_conf() {
    "$PY" - "$@" <<'EOF'
import json, sys

def lc(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + " ".join("%s = %s;" % (k, lc(x)) for k, x in v.items()) + " }"
    if v and all(isinstance(x, dict) for x in v):
        return "( " + ", ".join(lc(x) for x in v) + " )"
    return "[ " + ", ".join(lc(x) for x in v) + " ]"

out, groups = sys.argv[1], []
for spec in sys.argv[2:]:
    tag, rest = spec.split("=", 1)
    port, up, path = rest.split(":", 2)
    with open(path) as f:
        ss = json.load(f)["inbounds"][0]["streamSettings"]
    groups.append('  { tag = "%s"; listen = "127.0.0.1"; port = %s; upstream = "127.0.0.1:%s";\n'
                  '    streamSettings = %s; }' % (tag, port, up, lc(ss)))
with open(out, "w") as f:
    f.write(",\n".join(groups))
EOF
}

specs=() cspecs=()
for t in $TRANSPORTS; do
    if ! { SERVER_PORT=${P[$t]} UPSTREAM_PORT=${U[$t]} render "$t" server "$D/server-$t.json" &&
           LOCAL_PORT=${L[$t]} SERVER_PORT=${P[$t]} UPSTREAM_PORT=${U[$t]} \
               render "$t" client "$D/client-$t.json"; }; then
        err "cannot render the $t fixtures"; exit 1
    fi
    specs+=("$t=${P[$t]}:${U[$t]}:$D/server-$t.json")
    cspecs+=("$t=$D/client-$t.json")
done
listeners_conf "$D/listeners.conf" "${specs[@]}" || { err "cannot write the listeners"; exit 1; }
merge_v2ray client "$D/client.json" "${cspecs[@]}" || { err "cannot merge the client configs"; exit 1; }

CONF=$D/wharf.conf
# write_conf extra|plain [BROKEN-LINE]: CONF, with the extra listener or without, and a last line
write_conf() {
    {
        printf 'daemon = false;\nworker_processes = %d;\nuser = "nobody";\npid = "wharf.pid";\n' "$WORKERS"
        printf 'error_log = "error.log";\nlog_level = "info";\nshutdown_timeout = %d;\n' "$SHUTDOWN_TIMEOUT"
        printf 'listeners = (\n'
        cat "$D/listeners.conf"
        if [ "$1" = extra ]; then
            printf ',\n  { tag = "extra"; listen = "127.0.0.1"; port = %s; upstream = "127.0.0.1:%s";\n' \
                "$P_EXTRA" "${U[tcp]}"
            printf '    streamSettings = { network = "tcp"; security = "none"; }; }'
        fi
        printf '\n);\n'
        if [ -n "${2:-}" ]; then printf '%s\n' "$2"; fi
    } >"$CONF"
}
# write_current [BROKEN-LINE]: write_conf with the extra listener as the last good reload left it
write_current() { if [ "$extra" = 1 ]; then write_conf extra "$@"; else write_conf plain "$@"; fi; }

# ---------------------------------------------------------------------------------- start

for t in $TRANSPORTS; do
    "$PY" "$DOWNLOAD" serve "${U[$t]}" --lifetime 86400 >"$D/upstream-$t.out" 2>&1 &
    started $!
done
write_conf plain
if ! "$WHARF" -t -p "$D" -c "$CONF" >"$D/test.out" 2>&1; then
    err "wharf -t failed:"; cat "$D/test.out" >&2; exit 1
fi
"$WHARF" -p "$D" -c "$CONF" >"$D/stdout" 2>"$D/stderr" &
pid=$!
started "$pid"
v2ray -config "$D/client.json" >"$D/client.stdout" 2>"$D/client.stderr" &
cpid=$!
started "$cpid"

ready=()
for t in $TRANSPORTS; do
    ready+=("${U[$t]}" "${L[$t]}")
    case $t in quic | kcp) ;; *) ready+=("${P[$t]}") ;; esac
done
wait_ready "port %s not ready (%s); output:" "${ready[@]}" || exit 1
udp_bound() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }
for t in $TRANSPORTS; do
    case $t in quic | kcp) ;; *) continue ;; esac
    for _ in $(seq 1 100); do udp_bound "${P[$t]}" && break; sleep 0.1; done
    udp_bound "${P[$t]}" || { err "wharf's $t port ${P[$t]} is not bound"; exit 1; }
done

say "wharf reload soak: $RELOADS reloads (every tenth a broken config) under live traffic"
say "command: RELOADS=$RELOADS INTERVAL=$INTERVAL CLIENTS=$CLIENTS TRANSPORTS=\"$TRANSPORTS\" SIZE=$SIZE WARMUP=$WARMUP BEFORE=$BEFORE AFTER=$AFTER DRAIN=$DRAIN STREAM_TIMEOUT=$STREAM_TIMEOUT bench/soak.sh${*:+ $*}"
machine_header loadavg
say "  v2ray (client): $(version_of v2ray)"
say "setup: 127.0.0.1 only; wharf worker_processes=$WORKERS shutdown_timeout=$SHUTDOWN_TIMEOUT; one v2ray client for all; $CLIENTS client threads per transport, streams of $((SIZE / 2))..$SIZE bytes"
say ""

declare -A LOOP_PID
for t in $TRANSPORTS; do
    "$PY" "$DOWNLOAD" loop "${L[$t]}" --streams "$CLIENTS" --bytes "$SIZE" \
        --timeout "$STREAM_TIMEOUT" --progress "$D/progress-$t" >"$D/loop-$t.out" 2>&1 &
    LOOP_PID[$t]=$!
    started "${LOOP_PID[$t]}"
done

# the connect loop: "SEED 64" to the plain tcp listener, the 64 bytes checked, end of stream
"$PY" - "${P[tcp]}" "$DOWNLOAD" >"$D/connect.out" 2>&1 <<'EOF' &
import errno, os, random, signal, socket, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[2]))
from download import content
port, stop = int(sys.argv[1]), []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
ok = refused = failed = 0
while not stop:
    seed = random.getrandbits(48)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(b"%d 64\n" % seed)
            got = b""
            while True:
                b = s.recv(128)
                if not b:
                    break
                got += b
        finally:
            s.close()
        if got == content(seed, 64):
            ok += 1
        else:
            failed += 1
            print("%.3f failed: %d bytes, wrong answer" % (time.time(), len(got)), flush=True)
    except ConnectionRefusedError:
        refused += 1
        print("%.3f refused" % time.time(), flush=True)
    except OSError as e:
        failed += 1
        print("%.3f failed: %r" % (time.time(), e), flush=True)
    time.sleep(0.01)
print("connect: ok=%d refused=%d failed=%d" % (ok, refused, failed), flush=True)
EOF
CONNECT_PID=$!
started "$CONNECT_PID"

# ------------------------------------------------------------------------------- the run

workers() { pgrep -P "$pid" | sort -n | tr '\n' ' '; }
log_lines() { wc -l <"$D/error.log" 2>/dev/null || echo 0; }
new_log() { tail -n +"$(( $1 + 1 ))" "$D/error.log" 2>/dev/null; }   # new_log LINES: what came after

sleep "$WARMUP"
T_B0=$(now); sleep "$BEFORE"; T_B1=$(now)
say "before: $(calc '%.1f' "$T_B1 - $T_B0") s of traffic, workers: $(workers)"

good=0 good_applied=0 bad=0 bad_refused=0 extra=0
T_D0=$(now)
for i in $(seq 1 "$RELOADS"); do
    n0=$(log_lines)
    if [ $(( i % 10 )) = 0 ]; then
        bad=$(( bad + 1 ))
        if [ $(( bad % 2 )) = 1 ]; then line='no_such_directive = 1;'; else line='bogus = ;'; fi
        write_current "$line"
        where="wharf.conf:$(wc -l <"$CONF")"
        w0=$(workers)
        kill -HUP "$pid"
        refused=0
        for _ in $(seq 1 50); do
            if new_log "$n0" | grep -q "reload refused" && new_log "$n0" | grep -qF "$where"; then
                refused=1; break
            fi
            sleep 0.1
        done
        sleep 0.3
        # old workers may exit meanwhile; no new one may appear
        for w in $(workers); do in_list "$w0" "$w" || refused=0; done
        if [ $refused = 1 ]; then
            bad_refused=$(( bad_refused + 1 ))
        else
            err "reload $i: the broken config ($line) was not refused with $where, or workers changed"
            new_log "$n0" | tail -n 5 >&2
        fi
        write_current
    else
        good=$(( good + 1 ))
        extra=$(( 1 - extra ))
        write_current
        if "$WHARF" -p "$D" -c "$CONF" -s reload >"$D/reload.out" 2>&1; then
            for _ in $(seq 1 100); do
                [ "$(new_log "$n0" | grep -c "start worker process")" -ge $WORKERS ] && break
                sleep 0.1
            done
            if [ "$(new_log "$n0" | grep -c "start worker process")" -ge $WORKERS ]; then
                good_applied=$(( good_applied + 1 ))
            else
                err "reload $i: no new workers within 10 s"
            fi
        else
            err "reload $i: wharf -s reload failed: $(cat "$D/reload.out")"
        fi
    fi
    # reload i+1 is due at T_D0 + (i + 1/2 .. 3/2) x INTERVAL, however long this one took
    sleep "$(awk -v t0="$T_D0" -v now="$(now)" -v i="$i" -v m="$INTERVAL" -v r=$RANDOM \
        'BEGIN { d = t0 + (i + r / 32767) * m + m / 2 - now; printf "%.2f", (d > 0 ? d : 0) }')"
done
T_D1=$(now)
say "during: $RELOADS reloads in $(calc '%.1f' "$T_D1 - $T_D0") s, workers now: $(workers)"
sleep "$AFTER"
T_A1=$(now)

# stop the clients: each ends the stream it is in
kill -TERM "$CONNECT_PID" "${LOOP_PID[@]}" 2>/dev/null
deadline=$(( SECONDS + STREAM_TIMEOUT + 15 ))
for p in "$CONNECT_PID" "${LOOP_PID[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    wait "$p" 2>/dev/null
done
# the old workers exit once their last stream ended (the clients' connections close at their pace)
for _ in $(seq 1 $(( DRAIN * 5 ))); do
    [ "$(workers | wc -w)" -le $WORKERS ] && break
    sleep 0.2
done
alive=$(workers | wc -w)
say "after: $(calc '%.1f' "$T_A1 - $T_D1") s of traffic; clients stopped; workers alive: $alive ($(workers))"

# ------------------------------------------------------------------------------- figures

# bytes_at FILE TIME: the bytes received by TIME, from a progress file (TIME BYTES EXACT BROKEN)
bytes_at() { awk -v t="$2" '$1 <= t { b = $2 } END { print b + 0 }' "$1" 2>/dev/null || echo 0; }
# mibps FILE T0 T1
mibps() { calc '%.1f' "($(bytes_at "$1" "$3") - $(bytes_at "$1" "$2")) / 1048576 / ($3 - $2)"; }

say ""
NAME_W=10 CELL_W=9
fmt_row transport streams broken "MiB/s bef" during after
tot_s=0 tot_b=0 missing=0
declare -A TP
for t in $TRANSPORTS; do
    sum=$(grep '^loop:' "$D/loop-$t.out")
    if [ -z "$sum" ]; then
        err "$t: the client loop did not report"; missing=1
        fmt_row "$t" - - - - -
        continue
    fi
    s=$(printf '%s\n' "$sum" | kv streams); b=$(printf '%s\n' "$sum" | kv broken)
    tot_s=$(( tot_s + s )); tot_b=$(( tot_b + b ))
    f="$D/progress-$t"
    TP[$t]="$(mibps "$f" "$T_B0" "$T_B1") $(mibps "$f" "$T_D0" "$T_D1") $(mibps "$f" "$T_D1" "$T_A1")"
    # shellcheck disable=SC2086  # three figures
    fmt_row "$t" "$s" "$b" ${TP[$t]}
done
tb=0 td=0 ta=0
for t in "${!TP[@]}"; do
    read -r x y z <<<"${TP[$t]}"
    tb=$(calc '%.1f' "$tb + $x"); td=$(calc '%.1f' "$td + $y"); ta=$(calc '%.1f' "$ta + $z")
done
fmt_row all "$tot_s" "$tot_b" "$tb" "$td" "$ta"

csum=$(grep '^connect:' "$D/connect.out")
c_ok=$(printf '%s\n' "$csum" | kv ok); c_ref=$(printf '%s\n' "$csum" | kv refused)
c_fail=$(printf '%s\n' "$csum" | kv failed)
[ -n "$csum" ] || { err "the connect loop did not report"; missing=1; }

say ""
say "streams completed:           $(( tot_s - tot_b ))"
say "streams broken:              $tot_b"
say "connects ok:                 ${c_ok:--}"
say "connects refused or failed:  $(( ${c_ref:-0} + ${c_fail:-0} )) (refused ${c_ref:--}, failed ${c_fail:--})"
say "throughput MiB/s:            before $tb, during $td, after $ta"
say "workers alive at the end:    $alive (worker_processes $WORKERS)"
say "good reloads applied:        $good_applied of $good"
say "broken configs refused:      $bad_refused of $bad"
died=$(grep -c "exited on signal\|exited with code" "$D/error.log")
say "workers that died:           $died"

if [ "$tot_b" != 0 ] || [ "${c_ref:-0}" != 0 ] || [ "${c_fail:-0}" != 0 ] || [ "$died" != 0 ]; then
    say ""
    say "what broke (wall-clock times; reloads are the \"reconfiguring\" lines of wharf's error log${KEEP:+, $D/error.log}):"
    grep -h "broken stream" "$D"/loop-*.out | head -n 20
    grep -hv '^connect:' "$D/connect.out" | head -n 10
    grep -h "exited on signal\|exited with code" "$D/error.log" | head -n 10
fi

say ""
say "targets:"
TARGET_W=36
MISSED=0
# check NAME OK VALUE LIMIT
check() {
    local v=PASS
    [ "$2" = 1 ] || { v=MISS; MISSED=1; }
    printf "  %-${TARGET_W}s %s  (wharf %s, limit %s)\n" "$1" "$v" "$3" "$4"
}
check "streams broken = 0" "$([ "$tot_b" = 0 ] && [ $missing = 0 ] && echo 1)" "$tot_b" 0
check "connects refused or failed = 0" "$([ $(( ${c_ref:-1} + ${c_fail:-1} )) = 0 ] && echo 1)" \
    "$(( ${c_ref:-0} + ${c_fail:-0} ))" 0
check "workers alive at the end" "$([ "$alive" = $WORKERS ] && echo 1)" "$alive" "$WORKERS"
check "broken configs refused" "$([ "$bad_refused" = "$bad" ] && echo 1)" "$bad_refused" "$bad"
check "good reloads applied" "$([ "$good_applied" = "$good" ] && echo 1)" "$good_applied" "$good"
check "workers that died = 0" "$([ "$died" = 0 ] && echo 1)" "$died" 0
[ $MISSED = 0 ] || exit 2
exit 0
