#!/usr/bin/env bash
# Load benchmark: torii (1 worker) against nginx (worker_processes 1), both
# proxying with upstream keep-alive to the same nginx backend on loopback,
# measured with wrk. Prints req/s, p99 and the torii/nginx ratios.
#
# Env: DURATION (default 10s), CONNECTIONS (default 50), WARMUP (default 2s),
#      TORII_BIN (use this binary instead of building release),
#      SKIP_TORII=1 (measure nginx only: checks the bench itself).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}" >&2
    # Update the package lists only when the install cannot find the packages.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/torii-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

wait_port() { # port
    for _ in $(seq 1 500); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.02
    done
    echo "nothing listening on port $1" >&2
    return 1
}

BACKEND_PORT=$(free_port)
NGINX_PORT=$(free_port)
TORII_PORT=$(free_port)

start_nginx() { # dir, server block
    local dir=$1
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    keepalive_requests 1000000;
    $2
}
CONF
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off; user root;' &
    PIDS+=($!)
}

start_nginx "$WORK/backend" "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\n\"; } }"
wait_port "$BACKEND_PORT"

start_nginx "$WORK/proxy" "
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
wait_port "$NGINX_PORT"

if [ "${SKIP_TORII:-}" != 1 ]; then
    if [ -z "${TORII_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release -q)
        TORII_BIN="$ROOT/target/release/torii"
    fi
    cat >"$WORK/torii.toml" <<CONF
[global]
workers = 1
access_log = "off"
watch = false

[[upstream]]
name = "backend"
servers = ["127.0.0.1:$BACKEND_PORT"]
keepalive = true

[[listener]]
name = "http"
bind = "127.0.0.1:$TORII_PORT"

[[route]]
path = "/"
upstream = "backend"
CONF
    "$TORII_BIN" -c "$WORK/torii.toml" >"$WORK/torii.out" 2>&1 &
    PIDS+=($!)
    wait_port "$TORII_PORT" || { cat "$WORK/torii.out" >&2; exit 1; }
fi

# wrk prints "Requests/sec: N" and, with --latency, a "99% Xms" line.
run_wrk() { # name port -> "name rps p99_ms"
    local out
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$2/" >/dev/null
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
    echo "$out" >"$WORK/wrk-$1.txt"
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    if grep -q "Non-2xx" <<<"$out"; then
        echo "warning: $1 answered non-2xx: $(grep Non-2xx <<<"$out")" >&2
    fi
    echo "$1 $rps $(to_ms "$p99")"
}

to_ms() { # wrk latency (e.g. 512.00us, 1.23ms, 2.00s) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n
    }'
}

echo "wrk -t1 -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), backend nginx on :$BACKEND_PORT" >&2
results=()
results+=("$(run_wrk nginx "$NGINX_PORT")")
[ "${SKIP_TORII:-}" != 1 ] && results+=("$(run_wrk torii "$TORII_PORT")")

if command -v oha >/dev/null 2>&1; then
    for r in "nginx $NGINX_PORT" "torii $TORII_PORT"; do
        set -- $r
        [ "$1" = torii ] && [ "${SKIP_TORII:-}" = 1 ] && continue
        echo "oha $1:" >&2
        oha -c "$CONNECTIONS" -z "$DURATION" --no-tui "http://127.0.0.1:$2/" | grep -E "Requests/sec|99.00%" >&2 || true
    done
fi

printf '%-8s %12s %10s\n' name "req/s" "p99 ms"
for r in "${results[@]}"; do
    set -- $r
    printf '%-8s %12s %10s\n' "$1" "$2" "$3"
done
if [ ${#results[@]} -eq 2 ]; then
    set -- ${results[0]}; n_rps=$2; n_p99=$3
    set -- ${results[1]}; t_rps=$2; t_p99=$3
    awk -v a="$t_rps" -v b="$n_rps" -v c="$t_p99" -v d="$n_p99" 'BEGIN {
        printf "torii/nginx: req/s %.2f, p99 %.2f\n", a / b, (d > 0 ? c / d : 0)
    }'
fi
