#!/usr/bin/env bash
# Reload benchmark: wrk load through torii while it reloads every 100 ms
# (a background loop of rename + SIGHUP), against the same run without
# reloads; then the same for nginx with SIGHUP (`nginx -s reload`) every
# 100 ms. Both proxies
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
. "$(dirname "$0")/common.sh"

install_tools wrk nginx
make_workdir torii-reload-bench

BACKEND_PORT=$(free_port)
NGINX_PORT=$(free_port)
TORII_PORT=$(free_port)

start_backend "$BACKEND_PORT"

NGX=$WORK/proxy
mkdir -p "$NGX/logs" "$NGX/tmp"
for tag in a b; do
    nginx_conf "$NGX" "$(nginx_proxy_http "$BACKEND_PORT" "$NGINX_PORT" "add_header X-Config $tag;")" >"$NGX/$tag.conf"
    torii_proxy_conf "$BACKEND_PORT" "$TORII_PORT" "response_headers = { \"X-Config\" = \"$tag\" }" >"$WORK/$tag.toml"
done
cp "$NGX/a.conf" "$NGX/nginx.conf"
run_nginx "$NGX"
wait_port "$NGINX_PORT"

build_torii
cp "$WORK/a.toml" "$WORK/torii.toml"
start_torii "$TORII_PORT"

# The reload loop: swap the configuration by rename, then signal, every
# INTERVAL. It runs as one Python process for both proxies, so the loop
# itself forks nothing per reload: on two cores a `cp`/`mv`/`kill` shell loop
# costs the load more than either reload does. nginx gets SIGHUP on its
# master, which is what `nginx -s reload` sends. Each reload appends a line to
# the count file, so the number of reloads is known.
reload_loop() { # name, count file
    local dir conf target pid
    if [ "$1" = torii ]; then
        dir=$WORK conf=toml target=$WORK/torii.toml pid=$TORII_PID
    else
        dir=$NGX conf=conf target=$NGX/nginx.conf pid=$(cat "$NGX/nginx.pid")
    fi
    exec python3 - "$dir/a.$conf" "$dir/b.$conf" "$target" "$pid" "$INTERVAL" "$2" <<'PY'
import os, shutil, signal, sys, time
a, b, target, pid, interval, count = sys.argv[1:]
tmp = target + ".tmp"
i = 0
with open(count, "a", buffering=1) as log:
    while True:
        i += 1
        shutil.copyfile(b if i % 2 else a, tmp)
        os.replace(tmp, target)
        os.kill(int(pid), signal.SIGHUP)
        log.write(f"{i}\n")
        time.sleep(float(interval))
PY
}

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
    local non2xx sockerr
    non2xx=$(wrk_non2xx "$out")
    sockerr=$(wrk_sockerr "$out")
    echo "$name $(wc -l <"$count") $(wrk_rps "$out") ${non2xx:-0} ${sockerr:-0}"
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
