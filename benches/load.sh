#!/usr/bin/env bash
# Load benchmark: torii (1 worker) against nginx (worker_processes 1), both
# proxying with upstream keep-alive to the same nginx backend on loopback,
# measured with wrk. Prints req/s, p99 and the torii/nginx ratios.
#
# Env: DURATION (default 10s), CONNECTIONS (default 50), WARMUP (default 2s),
#      POOL (idle upstream connections kept by each proxy, default 128),
#      TORII_BIN (use this binary instead of building release),
#      SKIP_TORII=1 (measure nginx only: checks the bench itself).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2s}
. "$(dirname "$0")/common.sh"

install_tools wrk nginx
make_workdir torii-bench

BACKEND_PORT=$(free_port)
NGINX_PORT=$(free_port)
TORII_PORT=$(free_port)

start_backend "$BACKEND_PORT"
start_nginx "$WORK/proxy" "$(nginx_proxy_http "$BACKEND_PORT" "$NGINX_PORT")"
wait_port "$NGINX_PORT"

if [ "${SKIP_TORII:-}" != 1 ]; then
    build_torii
    torii_proxy_conf "$BACKEND_PORT" "$TORII_PORT" >"$WORK/torii.toml"
    start_torii "$TORII_PORT"
fi

run_wrk() { # name port -> "name rps p99_ms"
    local out
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$2/" >/dev/null
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
    echo "$out" >"$WORK/wrk-$1.txt"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "warning: $1 answered non-2xx: $(grep Non-2xx <<<"$out")" >&2
    fi
    echo "$1 $(wrk_rps "$out") $(wrk_p99_ms "$out")"
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
        oha_summary "$DURATION" "http://127.0.0.1:$2/" >&2 || true
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
