#!/bin/sh
# Load test of `seqmt serve` on 127.0.0.1 with wrk and the bundled model.
#
# 1. Throughput and latency: wrk POSTs one Multi30k test sentence per
#    request to /translate (bench/serve_load.lua) with 1, 4 and 16
#    connections. It then runs 16 connections again against a daemon
#    started with --max-batch-sentences 1. The script prints requests/s,
#    p50 and p99 latency and errors side by side, and the speed-up of the
#    daemon's default dynamic batching over no batching.
# 2. Memory: a fresh daemon serves a warm-up of WARMUP requests, then
#    MEMORY_REQUESTS more; the script prints VmRSS from /proc/PID/status
#    before and after, and the change in percent.
#
# Every wrk run stops after --duration seconds or --max-requests requests,
# whichever comes first, and the memory run after --memory-requests
# requests or --memory-time-limit seconds. Only the daemon this script
# starts is stopped, by its PID. Traffic goes to 127.0.0.1 only.
#
# usage: bench/serve_load.sh [--duration SECONDS] [--max-requests N]
#                            [--memory-requests N] [--memory-time-limit SECONDS]
# Run from the repository root after building. SEQMT_BUILD names the build
# folder (default build), SEQMT_BENCH_MODEL the model (default
# models/en-de.seqmt). wrk comes from Debian's wrk package; when it is
# missing, the script installs it with apt-get (as root, or through sudo).
set -eu

build=${SEQMT_BUILD:-build}
model=${SEQMT_BENCH_MODEL:-models/en-de.seqmt}
sentences_gz=data/multi30k/test_2016_flickr.en.gz
duration=30
max_requests=100000
memory_requests=20000
memory_time_limit=1800
warmup=200
start_timeout=60

die() {
    echo "serve_load.sh: $*" >&2
    exit 1
}

positive() { # NAME VALUE: exits unless VALUE is a whole number above 0
    case $2 in
    '' | *[!0-9]* | 0) die "$1 must be a whole number above 0, not '$2'" ;;
    esac
}

while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=${2-}; shift 2 ;;
    --max-requests) max_requests=${2-}; shift 2 ;;
    --memory-requests) memory_requests=${2-}; shift 2 ;;
    --memory-time-limit) memory_time_limit=${2-}; shift 2 ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'; see --help" ;;
    esac
done
positive --duration "$duration"
positive --max-requests "$max_requests"
positive --memory-requests "$memory_requests"
positive --memory-time-limit "$memory_time_limit"

[ -x "$build/seqmt" ] || die "$build/seqmt not found; build first (cmake --build $build)"
[ -f "$model" ] || die "model $model not found; set SEQMT_BENCH_MODEL to a model file"
[ -f "$sentences_gz" ] || die "$sentences_gz not found; run from the repository root"

# wrk: a benchmark tool, installed here and never by the product's build.
if ! command -v wrk >/dev/null 2>&1; then
    echo "serve_load.sh: wrk is not installed; installing Debian's wrk package" >&2
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        die "wrk is missing and this user cannot install it; run: apt-get install wrk"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null ||
        die "apt-get install wrk failed; install wrk and run again"
fi

work=$(mktemp -d)
server_pid=""
port=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

zcat "$sentences_gz" >"$work/sentences.en"
script_dir=$(cd "$(dirname "$0")" && pwd)
lua="$script_dir/serve_load.lua"

# Starts the daemon with extra flags "$@" and waits for its "listening on"
# line. Sets server_pid and port. Returns 1, leaving the log in
# $work/server.log, when the daemon exits first.
start_server() {
    : >"$work/server.log"
    "$build/seqmt" serve --model "$model" --host 127.0.0.1 --port 0 "$@" \
        2>"$work/server.log" &
    server_pid=$!
    waited=0
    while :; do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
            "$work/server.log")
        if [ -n "$port" ]; then
            case $(readlink "/proc/$server_pid/exe") in
            */seqmt) return 0 ;;
            *) die "PID $server_pid is not seqmt; cannot read its memory" ;;
            esac
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            server_pid=""
            return 1
        fi
        [ "$waited" -ge $((start_timeout * 10)) ] &&
            die "seqmt serve printed no 'listening on' line within ${start_timeout} s: $(cat "$work/server.log")"
        sleep 0.1
        waited=$((waited + 1))
    done
}

stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

rss_kib() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server_pid/status"
}

# Runs wrk against the daemon: CONNECTIONS THREADS SECONDS MAX_REQUESTS.
# Stops wrk with SIGINT once every thread has sent its share of
# MAX_REQUESTS. Leaves wrk's RESULT line in $work/result.
run_wrk() {
    connections=$1
    threads=$2
    seconds=$3
    per_thread=$((($4 + threads - 1) / threads))
    rm -rf "$work/stop"
    mkdir "$work/stop"
    wrk -t "$threads" -c "$connections" -d "${seconds}s" --timeout 60s -s "$lua" \
        "http://127.0.0.1:$port/translate" -- "$work/sentences.en" "$per_thread" \
        "$work/stop" >"$work/wrk.out" 2>&1 &
    wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        if [ "$(ls "$work/stop" | wc -l)" -ge "$threads" ]; then
            kill -INT "$wrk_pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$wrk_pid" || die "wrk failed: $(cat "$work/wrk.out")"
    grep '^RESULT ' "$work/wrk.out" >"$work/result" || die "wrk printed no result: $(cat "$work/wrk.out")"
}

# Prints field NAME of the last RESULT line.
field() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$work/result"
}

print_row() { # LABEL CONNECTIONS
    printf '%-34s %5s %9s %9s %9s %9s %8s %8s\n' "$1" "$2" "$(field requests)" "$(field rps)" \
        "$(field p50_ms)" "$(field p99_ms)" "$(field status_errors)" \
        "$(($(field socket_errors) + $(field timeouts)))"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $model; sentences: $(wc -l <"$work/sentences.en") from $sentences_gz, one per request"
echo "each run: at most ${duration} s and $max_requests requests"
echo
printf '%-34s %5s %9s %9s %9s %9s %8s %8s\n' case conns requests "req/s" "p50 ms" "p99 ms" \
    non-2xx "sock err"

# Step 1: 1, 4 and 16 connections on the daemon's default flags.
start_server || die "seqmt serve failed to start: $(cat "$work/server.log")"
for connections in 1 4 16; do
    threads=$((connections < 2 ? 1 : 2))
    run_wrk "$connections" "$threads" "$duration" "$max_requests"
    print_row "default flags" "$connections"
    batched_rps=$(field rps) # the 16-connection figure remains
done
stop_server

# Step 2: 16 connections without batching.
if start_server --max-batch-sentences 1; then
    run_wrk 16 2 "$duration" "$max_requests"
    print_row "--max-batch-sentences 1" 16
    stop_server
    awk -v b="$batched_rps" -v u="$(field rps)" 'BEGIN {
        if (u > 0) printf "\nspeed-up of dynamic batching at 16 connections: %.2fx (%.2f vs %.2f req/s)\n", b / u, b, u
        else print "\nspeed-up of dynamic batching: no requests completed without batching" }'
elif grep -q "unrecognized option '--max-batch-sentences'" "$work/server.log"; then
    echo
    echo "no batching comparison: this seqmt serve rejects --max-batch-sentences (it has no"
    echo "dynamic batching yet); its message: $(head -n 1 "$work/server.log")"
else
    die "seqmt serve --max-batch-sentences 1 failed to start: $(cat "$work/server.log")"
fi

# Step 3: resident memory over many requests on a fresh daemon.
echo
start_server || die "seqmt serve failed to start: $(cat "$work/server.log")"
idle=$(rss_kib)
run_wrk 4 2 "$memory_time_limit" "$warmup"
before=$(rss_kib)
started=$(date +%s)
run_wrk 4 2 "$memory_time_limit" "$memory_requests"
served=$(field requests)
errors=$(($(field status_errors) + $(field socket_errors) + $(field timeouts)))
after=$(rss_kib)
stop_server
awk -v idle="$idle" -v before="$before" -v after="$after" -v n="$served" -v w="$warmup" \
    -v errors="$errors" -v s="$(($(date +%s) - started))" 'BEGIN {
    printf "memory: VmRSS %.1f MiB idle, %.1f MiB after %d warm-up requests, %.1f MiB after %d more requests (%d s, %d errors)\n",
        idle / 1024, before / 1024, w, after / 1024, n, s, errors
    printf "memory: change over the %d requests: %+.1f%% (%+.1f%% since idle)\n",
        n, 100 * (after - before) / before, 100 * (after - idle) / idle }'
[ "$served" -ge "$memory_requests" ] ||
    echo "memory: NOTE: only $served of $memory_requests requests completed within ${memory_time_limit} s"
