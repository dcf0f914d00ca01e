# Helpers shared by the benchmarks (load.sh, reload.sh, tls.sh), sourced by
# each of them after its own `set -euo pipefail` and knob defaults. Defining
# them here runs nothing but ROOT; each script calls them in its own order.
# Uses CONNECTIONS (wrk) from the sourcing script; sets ROOT, NGINX, WORK,
# PIDS, NGINX_PID, TORII_PID and TORII_BIN.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

install_tools() { # command... (each also the name of its Debian package)
    local need_apt=() c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        # nginx lives in /usr/sbin, which a non-root PATH may lack.
        [ "$c" = nginx ] && [ -x /usr/sbin/nginx ] && continue
        need_apt+=("$c")
    done
    if [ ${#need_apt[@]} -gt 0 ]; then
        echo "installing ${need_apt[*]}" >&2
        # Update the package lists only when the install cannot find the packages.
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1; then
            apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
        fi
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

# Every process the bench starts goes into PIDS so that any exit (an error
# under set -e, ^C) stops them and removes the temporary prefixes.
make_workdir() { # name (of the mktemp directory under /tmp)
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT INT TERM
}

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

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

# One worker, no access log, every temporary file inside the prefix dir (the
# bench runs nginx outside its packaged paths), keep-alive without a request
# cap so that wrk's connections stay open for the whole run.
nginx_conf() { # dir, http block body, [worker_connections], [main-context directives] -> the text
    echo "worker_processes 1;"
    if [ -n "${4:-}" ]; then echo "$4"; fi
    cat <<CONF
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections ${3:-4096}; }
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

run_nginx() { # dir (holding nginx.conf, logs/ and tmp/) -> NGINX_PID
    "$NGINX" -p "$1" -c "$1/nginx.conf" -g 'daemon off; user root;' &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
}

start_nginx() { # dir, then nginx_conf's arguments after dir -> NGINX_PID
    local dir=$1
    shift
    mkdir -p "$dir/logs" "$dir/tmp"
    nginx_conf "$dir" "$@" >"$dir/nginx.conf"
    run_nginx "$dir"
}

# load.sh and reload.sh compare the two proxies on the same path: an nginx
# backend answering a static 200, reached through upstream keep-alive (nginx
# needs HTTP/1.1 and an empty Connection header for its pool to be used).
# Both pools hold POOL idle connections (default 128, above the load's
# concurrency, as a production setup would): with fewer, both proxies spend
# the run reconnecting, which measures the backend's accept path instead.
start_backend() { # port
    start_nginx "$WORK/backend" "server { listen 127.0.0.1:$1; location / { return 200 \"hello world\n\"; } }"
    wait_port "$1"
}

nginx_proxy_http() { # backend port, listen port, [location directive] -> http block body
    cat <<CONF
    upstream backend { server 127.0.0.1:$1; keepalive ${POOL:-128}; }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";${3:+
            $3}
        }
    }
CONF
}

torii_proxy_conf() { # backend port, listen port, [route key line] -> torii.toml text
    cat <<CONF
[global]
workers = 1
access_log = "off"
watch = false

[[upstream]]
name = "backend"
servers = ["127.0.0.1:$1"]
keepalive = true
max_idle = ${POOL:-128}

[[listener]]
name = "http"
bind = "127.0.0.1:$2"

[[route]]
path = "/"
upstream = "backend"${3:+
$3}
CONF
}

build_torii() { # -> TORII_BIN, unless the caller already set it
    if [ -z "${TORII_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release -q)
        TORII_BIN="$ROOT/target/release/torii"
    fi
}

start_torii() { # port (a listener of $WORK/torii.toml) -> TORII_PID
    "$TORII_BIN" -c "$WORK/torii.toml" >"$WORK/torii.out" 2>"$WORK/torii.err" &
    TORII_PID=$!
    PIDS+=("$TORII_PID")
    wait_port "$1" || { cat "$WORK/torii.out" "$WORK/torii.err" >&2; exit 1; }
}

# wrk's summary: "Requests/sec: N", with --latency a "99% X" line,
# "Non-2xx or 3xx responses: N", "Socket errors: connect N, read N, write N, timeout N".
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' <<<"$1"; }
wrk_p99_ms() { to_ms "$(awk '$1 == "99%" {print $2}' <<<"$1")"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$1"; }
wrk_sockerr() { awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$1"; }

to_ms() { # wrk latency (e.g. 512.00us, 1.23ms, 2.00s, 1.05m) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n
    }'
}

oha_summary() { # duration url [oha args...] -> its req/s and p99 lines
    oha -c "$CONNECTIONS" -z "$1" --no-tui "${@:3}" "$2" | grep -E 'Requests/sec|99.00%'
}
