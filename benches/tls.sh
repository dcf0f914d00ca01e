#!/usr/bin/env bash
# TLS benchmark: torii (workers = 1) against nginx (worker_processes 1), the
# same certificates, both answering a static 200 themselves (a torii
# `respond` route, an nginx `return 200`) so that TLS is what is measured.
#
#   (a) full handshakes/s, ECDSA P-256 and RSA 2048: THREADS client threads,
#       each looping connect + handshake + one GET + close, no resumption
#       offered (and nginx with session tickets and cache off);
#   (b) resumed handshakes/s (session tickets), ECDSA;
#   (c) keep-alive requests over TLS with wrk (and oha when installed);
#   (d) RSS per idle TLS keep-alive connection: IDLE connections, each after
#       a handshake and one request, kept open.
#
# The handshake client is examples/handshake.rs (rustls, ring).
# Env: DURATION (seconds, default 10), THREADS (4), CONNECTIONS (wrk, 50),
#      IDLE (5000), TORII_BIN (use this binary instead of building release).
set -euo pipefail

DURATION=${DURATION:-10}
THREADS=${THREADS:-4}
CONNECTIONS=${CONNECTIONS:-50}
IDLE=${IDLE:-5000}
. "$(dirname "$0")/common.sh"

# 2 x IDLE sockets in one process (client side) plus slack.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE * 2 + 200)) ]; then
    echo "ulimit -n is $(ulimit -n); need $((IDLE * 2 + 200)) for IDLE=$IDLE" >&2
    exit 1
fi

install_tools wrk nginx openssl

(cd "$ROOT" && cargo build --release -q --example handshake)
HS="$ROOT/target/release/examples/handshake"
build_torii
make_workdir torii-tls-bench

# Certificates: ECDSA P-256 from torii itself, RSA 2048 from openssl.
"$TORII_BIN" cert self-signed --host localhost --out "$WORK/ecdsa" >/dev/null
mkdir -p "$WORK/rsa"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" -keyout "$WORK/rsa/server.key" \
    -out "$WORK/rsa/server.crt" 2>/dev/null
chmod 600 "$WORK/rsa/server.key"

T_EC=$(free_port); T_RSA=$(free_port)
N_EC=$(free_port); N_RSA=$(free_port); N_RES=$(free_port)

cat >"$WORK/torii.toml" <<CONF
[global]
workers = 1
access_log = "off"
watch = false
max_connections = $((IDLE + 1000))

[timeouts]
client_keepalive = "300s"

[[listener]]
name = "ecdsa"
bind = "127.0.0.1:$T_EC"
tls = { cert = "$WORK/ecdsa/server.crt", key = "$WORK/ecdsa/server.key" }

[[listener]]
name = "rsa"
bind = "127.0.0.1:$T_RSA"
tls = { cert = "$WORK/rsa/server.crt", key = "$WORK/rsa/server.key" }

[[route]]
path = "/"
respond = { status = 200, body = "hello\n", content_type = "text/plain" }
CONF
start_torii "$T_EC"

nginx_server() { # port cert-dir tickets(on|off) cache
    cat <<BLOCK
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $2/server.crt;
        ssl_certificate_key $2/server.key;
        ssl_session_tickets $3;
        ssl_session_cache $4;
        location / { return 200 "hello\n"; }
    }
BLOCK
}
start_nginx "$WORK/nginx" "default_type text/plain;
    keepalive_timeout 300s;
    ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_server "$N_EC" "$WORK/ecdsa" off off)
$(nginx_server "$N_RSA" "$WORK/rsa" off off)
$(nginx_server "$N_RES" "$WORK/ecdsa" on "shared:SSL:10m")" \
    $((IDLE + 1000)) "worker_rlimit_nofile $((IDLE * 2 + 1000));"
wait_port "$N_EC"; wait_port "$N_RSA"; wait_port "$N_RES"

rss_kib() { # pid... -> summed VmRSS in KiB
    local sum=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }

field() { # key line
    tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'
}

declare -A R
hs_rate() { # name port mode
    local line
    line=$("$HS" rate "127.0.0.1:$2" localhost "$THREADS" "$DURATION" "$3")
    echo "$1: $line" >&2
    R[$1]=$(field rate "$line")
    R[$1.full]=$(field full "$line")
    R[$1.resumed]=$(field resumed "$line")
    R[$1.errors]=$(field errors "$line")
}

keepalive() { # name port
    local out
    wrk -t1 -c"$CONNECTIONS" -d2s "https://127.0.0.1:$2/" >/dev/null
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "https://127.0.0.1:$2/")
    grep -q "Non-2xx\|Socket errors" <<<"$out" && echo "$1 wrk: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2
    R[$1.ka]=$(wrk_rps "$out")
    R[$1.p99]=$(wrk_p99_ms "$out")
    echo "$1 keep-alive: ${R[$1.ka]} req/s, p99 ${R[$1.p99]} ms" >&2
    if command -v oha >/dev/null 2>&1; then
        echo "oha $1: $(oha_summary "${DURATION}s" "https://127.0.0.1:$2/" --insecure | tr -s ' \n' ' ')" >&2
    fi
}

idle_rss() { # name port pids-function
    local before after ready n
    before=$(rss_kib $($3))
    rm -f "$WORK/release" "$WORK/idle.out"
    "$HS" idle "127.0.0.1:$2" localhost "$IDLE" "$WORK/release" >"$WORK/idle.out" &
    local cpid=$!
    PIDS+=("$cpid")
    for _ in $(seq 1 1200); do
        grep -q READY "$WORK/idle.out" 2>/dev/null && break
        sleep 0.1
    done
    ready=$(grep READY "$WORK/idle.out" || echo "READY opened=0 errors=?")
    after=$(rss_kib $($3))
    touch "$WORK/release"
    wait "$cpid" || true
    n=$(field opened "$ready")
    echo "$1 idle: $ready, RSS $before KiB -> $after KiB" >&2
    R[$1.idle]=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.1f", (n > 0 ? (a - b) / n : 0) }')
    R[$1.rss0]=$before; R[$1.rss1]=$after; R[$1.opened]=$n
}
torii_pids() { echo "$TORII_PID"; }

echo "$THREADS client threads x ${DURATION}s per handshake case; wrk -c$CONNECTIONS; $IDLE idle connections" >&2
hs_rate torii.full_ec "$T_EC" full
hs_rate nginx.full_ec "$N_EC" full
hs_rate torii.full_rsa "$T_RSA" full
hs_rate nginx.full_rsa "$N_RSA" full
hs_rate torii.res_ec "$T_EC" resume
hs_rate nginx.res_ec "$N_RES" resume
keepalive torii "$T_EC"
keepalive nginx "$N_EC"
idle_rss torii "$T_EC" torii_pids
idle_rss nginx "$N_EC" nginx_pids

row() { # label torii nginx higher-is-better(1|0)
    awk -v l="$1" -v t="$2" -v n="$3" 'BEGIN {
        printf "%-34s %12s %12s %10s\n", l, t, n, (n > 0 ? sprintf("%.2f", t / n) : "-")
    }'
}
echo
printf '%-34s %12s %12s %10s\n' case torii nginx torii/nginx
row "full handshakes/s ECDSA P-256" "${R[torii.full_ec]}" "${R[nginx.full_ec]}"
row "full handshakes/s RSA 2048" "${R[torii.full_rsa]}" "${R[nginx.full_rsa]}"
row "resumed handshakes/s (tickets)" "${R[torii.res_ec]}" "${R[nginx.res_ec]}"
row "keep-alive req/s (wrk)" "${R[torii.ka]}" "${R[nginx.ka]}"
row "keep-alive p99 ms (wrk)" "${R[torii.p99]}" "${R[nginx.p99]}"
row "RSS KiB per idle TLS connection" "${R[torii.idle]}" "${R[nginx.idle]}"
echo
for s in torii nginx; do
    echo "$s: full ECDSA ${R[$s.full_ec.full]} full/${R[$s.full_ec.resumed]} resumed/${R[$s.full_ec.errors]} errors;" \
        "RSA ${R[$s.full_rsa.full]}/${R[$s.full_rsa.resumed]}/${R[$s.full_rsa.errors]};" \
        "resume case ${R[$s.res_ec.full]} full/${R[$s.res_ec.resumed]} resumed/${R[$s.res_ec.errors]} errors;" \
        "idle ${R[$s.opened]} open, RSS ${R[$s.rss0]} -> ${R[$s.rss1]} KiB"
done
