#!/usr/bin/env bash
# Reload benchmark: wrk load through torii while it reloads every 100 ms
# (a background loop of `kill -HUP`), against the same run without reloads;
# then the same for nginx with `nginx -s reload` every 100 ms. Both proxies
# run one worker and proxy with upstream keep-alive to the same nginx
# backend (`return 200`). Each reload alternates between two configurations
# (a different response header), replaced by rename, so every reload really
# builds a new configuration. Prints req/s, non-2xx responses, socket errors
# and the throughput change caused by reloading.
#
# Env: DURATION (default 10s), CONNECTIONS (default 50), WARMUP (default 2s),
#      INTERVAL (seconds between reloads, default 0.1),
#      TORII_BIN (use this binary instead of building release).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2s}
INTERVAL=${INTERVAL:-0.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# The helpers below follow benches/load.sh (not sourced: it runs its own
# benchmark when read).
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/torii-reload-bench.XXXXXX)
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

nginx_conf() { # dir, http block body -> the configuration text
    cat <<CONF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/tmp;
    proxy_temp_path $1/tmp;
    fastcgi_temp_path $1/tmp;
    uwsgi_temp_path $1/tmp;
    scgi_temp_path $1/tmp;
    keepalive_requests 1000000;
    $2
}
CONF
}

start_nginx() { # dir, http block body
    mkdir -p "$1/logs" "$1/tmp"
    nginx_conf "$1" "$2" >"$1/nginx.conf"
    "$NGINX" -p "$1" -c "$1/nginx.conf" -g 'daemon off; user root;' &
    PIDS+=($!)
}

start_nginx "$WORK/backend" "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\n\"; } }"
wait_port "$BACKEND_PORT"

nginx_proxy() { # tag -> http block of the nginx proxy
    cat <<CONF
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Config $1;
        }
    }
CONF
}
NGX=$WORK/proxy
mkdir -p "$NGX/logs" "$NGX/tmp"
nginx_conf "$NGX" "$(nginx_proxy a)" >"$NGX/a.conf"
nginx_conf "$NGX" "$(nginx_proxy b)" >"$NGX/b.conf"
cp "$NGX/a.conf" "$NGX/nginx.conf"
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off; user root;' &
NGINX_PID=$!
PIDS+=($NGINX_PID)
wait_port "$NGINX_PORT"

if [ -z "${TORII_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q)
    TORII_BIN="$ROOT/target/release/torii"
fi
torii_conf() { # tag
    cat <<CONF
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
response_headers = { "X-Config" = "$1" }
CONF
}
torii_conf a >"$WORK/a.toml"
torii_conf b >"$WORK/b.toml"
cp "$WORK/a.toml" "$WORK/torii.toml"
"$TORII_BIN" -c "$WORK/torii.toml" >"$WORK/torii.out" 2>"$WORK/torii.err" &
TORII_PID=$!
PIDS+=($TORII_PID)
wait_port "$TORII_PORT" || { cat "$WORK/torii.err" >&2; exit 1; }

# The reload loop: swap the configuration by rename, then signal. Each
# iteration appends a line to $2 so the number of reloads is known.
reload_loop() { # name, count file
    local i=0
    while :; do
        i=$((i + 1))
        if [ "$1" = torii ]; then
            if [ $((i % 2)) = 1 ]; then cp "$WORK/b.toml" "$WORK/t.tmp"; else cp "$WORK/a.toml" "$WORK/t.tmp"; fi
            mv "$WORK/t.tmp" "$WORK/torii.toml"
            kill -HUP "$TORII_PID"
        else
            if [ $((i % 2)) = 1 ]; then cp "$NGX/b.conf" "$NGX/n.tmp"; else cp "$NGX/a.conf" "$NGX/n.tmp"; fi
            mv "$NGX/n.tmp" "$NGX/nginx.conf"
            "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -s reload 2>>"$NGX/logs/reload.err"
        fi
        echo "$i" >>"$2"
        sleep "$INTERVAL"
    done
}

# wrk's summary: "Requests/sec: N", "Non-2xx or 3xx responses: N",
# "Socket errors: connect N, read N, write N, timeout N".
run_wrk() { # name port reload(0|1) -> "name reloads rps non2xx sockerr"
    local name=$1 port=$2 reload=$3 out loop_pid="" count=$WORK/count-$1-$3
    : >"$count"
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/" >/dev/null
    if [ "$reload" = 1 ]; then
        reload_loop "$name" "$count" &
        loop_pid=$!
    fi
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$port/")
    if [ -n "$loop_pid" ]; then
        kill "$loop_pid" 2>/dev/null || true
        wait "$loop_pid" 2>/dev/null || true
    fi
    echo "$out" >"$WORK/wrk-$name-$reload.txt"
    local rps non2xx sockerr
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    echo "$name $(wc -l <"$count") $rps ${non2xx:-0} ${sockerr:-0}"
}

echo "wrk -t1 -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), reload every ${INTERVAL}s, backend nginx on :$BACKEND_PORT" >&2
results=()
results+=("$(run_wrk torii "$TORII_PORT" 0)")
results+=("$(run_wrk torii "$TORII_PORT" 1)")
results+=("$(run_wrk nginx "$NGINX_PORT" 0)")
results+=("$(run_wrk nginx "$NGINX_PORT" 1)")

# Did torii really reload each time? Count its reload lines and rejections.
torii_reloaded=$(grep -c "reloaded in" "$WORK/torii.err" || true)
torii_rejected=$(grep -c "reload rejected" "$WORK/torii.err" || true)
if ! kill -0 "$TORII_PID" 2>/dev/null; then
    echo "torii died during the benchmark:" >&2
    tail -20 "$WORK/torii.err" >&2
    exit 1
fi

printf '%-6s %8s %12s %8s %14s %10s\n' proxy reloads "req/s" non-2xx socket-errors "change"
base=""
for r in "${results[@]}"; do
    set -- $r
    if [ "$2" = 0 ]; then base=$3; change="-"; else
        change=$(awk -v a="$3" -v b="$base" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }')
    fi
    printf '%-6s %8s %12s %8s %14s %10s\n' "$1" "$2" "$3" "$4" "$5" "$change"
done
echo "torii logged $torii_reloaded reloads ($torii_rejected rejected); its last:"
grep "reloaded in" "$WORK/torii.err" | tail -1 | sed 's/^/  /'
