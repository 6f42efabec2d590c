#!/usr/bin/env bash
# shellcheck disable=SC2059 # one printf format, $row_format, for the header and the rows
# Compares stepraft-kv with etcd on this machine: a 3-node cluster of each on loopback (fsync
# on, default settings, data under one temp dir), both driven by the same load generator
# (`stepraft-kv bench`, which speaks etcd's v3 JSON gateway with --target etcd), runs
# interleaved (stepraft, etcd, stepraft, ...) for every client level and round, then a table,
# medians per system and level, the ratio stepraft/etcd, and each node's memory, CPU time and
# data size. See BENCHMARKS.md.
#
# Before the rounds, each fresh cluster takes a fixed number of writes and every node's memory
# and data size are printed; every round ends with a failover run per system: clients write,
# the leader is killed with SIGKILL, and the longest time in which no write succeeded is the
# failover time a client sees (the killed node is restarted on its data afterwards).
#
#   bash bench/compare-etcd.sh [--rounds 3] [--seconds 10] [--levels 1,16,64,256]
#                              [--read-clients 16] [--connect leader] [--memory-writes 100000]
#                              [--failover-clients 16] [--keep]
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/compare-etcd.sh [options]
  --rounds N         rounds of every level, interleaved between the systems (default 3)
  --seconds S        seconds per run (default 10)
  --levels L         comma-separated client counts of the write levels (default 1,16,64,256)
  --read-clients N   clients of the linearizable-read level run each round (default 16; 0: none)
  --connect MODE     node each client starts with: leader, spread or first (default leader)
  --memory-writes N  writes (64 clients) to each fresh cluster before the rounds, after which
                     every node's memory and data size are printed (default 100000; 0: none)
  --failover-clients N
                     clients of the failover run that ends each round (default 16; 0: none)
  --keep             keep the temp dir (data, logs, results.jsonl) instead of removing it
Environment: ETCD (the etcd binary; default: etcd on PATH, installed with apt-get if
missing), TMPDIR (where the temp dir goes; it must be on a real disk for fsync to count).
EOF
}

rounds=3
seconds=10
levels=1,16,64,256
read_clients=16
connect=leader
memory_writes=100000
failover_clients=16
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --levels) levels=$2; shift 2 ;;
        --read-clients) read_clients=$2; shift 2 ;;
        --connect) connect=$2; shift 2 ;;
        --memory-writes) memory_writes=$2; shift 2 ;;
        --failover-clients) failover_clients=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare-etcd: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "compare-etcd: --rounds must be a positive integer" >&2; exit 2; }
[[ $levels =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "compare-etcd: --levels must be like 1,16,64" >&2; exit 2; }
[[ $read_clients =~ ^[0-9]+$ ]] || { echo "compare-etcd: --read-clients must be an integer" >&2; exit 2; }
[[ $memory_writes =~ ^[0-9]+$ ]] || { echo "compare-etcd: --memory-writes must be an integer" >&2; exit 2; }
[[ $failover_clients =~ ^[0-9]+$ ]] || { echo "compare-etcd: --failover-clients must be an integer" >&2; exit 2; }
case "$connect" in leader | spread | first) ;; *) echo "compare-etcd: bad --connect $connect" >&2; exit 2 ;; esac
IFS=, read -r -a level_list <<<"$levels"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '%s\n' "$*" >&2; }

# --- processes and cleanup ----------------------------------------------------------------
pids=()        # every server started here
names=()       # their names, by position
bench_pid=""
tmp=""
# Whether process $1 runs: exists and is not a zombie (an exited child not yet reaped, which
# `kill -0` still finds).
running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "${state:0:1}" != Z ]
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$bench_pid" ]; then kill "$bench_pid" 2>/dev/null || true; fi
    # TERM, then KILL after 2 s: an etcd leader told to stop first tries to hand its
    # leadership over, which waits out its timeout while its peers stop too.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    local waited=0
    for pid in "${pids[@]}"; do
        while running "$pid" && [ $waited -lt 20 ]; do sleep 0.1; waited=$((waited + 1)); done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true # reaped here, where bash's "Killed" notice is silenced
    done
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        if [ $status -eq 1 ] && [ -s "$tmp/bench.log" ]; then # a failure, not a signal
            say "--- last lines of the load generator's log"
            tail -n 5 "$tmp/bench.log" >&2
        fi
        if [ $keep -eq 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- etcd ----------------------------------------------------------------------------------
etcd=${ETCD:-$(command -v etcd || true)}
if [ -z "$etcd" ]; then
    say "etcd is missing: installing Debian's etcd-server with apt-get"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
    etcd=$(command -v etcd)
fi
# etcd 3.4 refuses to start on arm64 unless told that this is wanted.
[ "$(uname -m)" = aarch64 ] && export ETCD_UNSUPPORTED_ARCH=arm64
etcd_version=$("$etcd" --version | sed -n 's/^etcd Version: //p')
if command -v pgrep >/dev/null && pgrep -x etcd >/dev/null; then
    say "warning: an etcd is already running on this machine (pid $(pgrep -x etcd | tr '\n' ' ')); it takes CPU from the runs"
fi

# --- stepraft-kv -----------------------------------------------------------------------------
say "building stepraft-kv (release)"
(cd "$root" && nice -n 19 cargo build --release -q -p stepraft-kv)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
bin=$target_dir/release/stepraft-kv
[ -x "$bin" ] || { say "compare-etcd: no $bin after the build"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare-etcd.XXXXXX")
mkdir -p "$tmp/stepraft" "$tmp/etcd"
filesystem=$(stat -f -c %T "$tmp")
case "$filesystem" in
    tmpfs | ramfs) say "warning: $tmp is on $filesystem, where fsync costs nothing; set TMPDIR to a directory on a disk" ;;
esac

# Nine free loopback ports: a connection that succeeds means something listens there.
ports=()
port=$((20000 + RANDOM % 30000))
while [ ${#ports[@]} -lt 9 ]; do
    port=$((port + 1))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ports+=("$port"); fi
done

# --- clusters --------------------------------------------------------------------------------
stepraft_nodes="" stepraft_peers="" etcd_nodes="" etcd_cluster=""
for i in 1 2 3; do
    stepraft_nodes+="${stepraft_nodes:+,}127.0.0.1:${ports[i - 1]}"
    stepraft_peers+="${stepraft_peers:+,}$i=127.0.0.1:${ports[i - 1]}"
    etcd_nodes+="${etcd_nodes:+,}127.0.0.1:${ports[i + 2]}"
    etcd_cluster+="${etcd_cluster:+,}etcd-$i=http://127.0.0.1:${ports[i + 5]}"
done
# Starts node $2 (1 to 3) of system $1 in the background, or restarts it on its data; its
# pid goes to position 2 * ($2 - 1) of pids (stepraft) or the one after (etcd). A restart
# appends to the node's log.
start_node() {
    local system=$1 i=$2 slot
    if [ "$system" = stepraft ]; then
        slot=$((2 * (i - 1)))
        "$bin" serve --id "$i" --listen "127.0.0.1:${ports[i - 1]}" --peers "$stepraft_peers" \
            --data "$tmp/stepraft/node-$i" </dev/null >/dev/null 2>>"$tmp/stepraft/node-$i.log" &
    else
        slot=$((2 * (i - 1) + 1))
        "$etcd" --name "etcd-$i" --data-dir "$tmp/etcd/etcd-$i" \
            --listen-client-urls "http://127.0.0.1:${ports[i + 2]}" \
            --advertise-client-urls "http://127.0.0.1:${ports[i + 2]}" \
            --listen-peer-urls "http://127.0.0.1:${ports[i + 5]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ports[i + 5]}" \
            --initial-cluster "$etcd_cluster" --initial-cluster-token compare-etcd \
            --initial-cluster-state new --logger zap --log-outputs stderr \
            </dev/null >/dev/null 2>>"$tmp/etcd/etcd-$i.log" &
    fi
    pids[slot]=$!
    names[slot]=$system-$i
}
for i in 1 2 3; do
    start_node stepraft "$i"
    start_node etcd "$i"
done

# Every node still running, or the name of the first that is not.
check_alive() {
    local i
    for i in "${!pids[@]}"; do
        if ! running "${pids[i]}"; then
            say "compare-etcd: ${names[i]} (pid ${pids[i]}) exited; the last lines of its log:"
            case "${names[i]}" in
                stepraft-*) tail -n 10 "$tmp/stepraft/node-${names[i]#stepraft-}.log" >&2 ;;
                *) tail -n 10 "$tmp/etcd/${names[i]}.log" >&2 ;;
            esac
            exit 1
        fi
    done
}

# Runs `stepraft-kv bench` in the background and waits for it, in this shell (not in a
# command substitution), so that a signal stops the script at once; its output goes to
# $tmp/out, its stderr to bench.log.
bench() {
    "$bin" bench --value-bytes 100 --connect "$connect" "$@" >"$tmp/out" 2>>"$tmp/bench.log" &
    bench_pid=$!
    local status=0
    wait "$bench_pid" || status=$?
    bench_pid=""
    [ $status -eq 0 ] || { say "compare-etcd: stepraft-kv bench $* failed ($status)"; exit 1; }
}
nodes_of() { if [ "$1" = stepraft ]; then echo "$stepraft_nodes"; else echo "$etcd_nodes"; fi; }

# Waits (up to 15 s) until a node of each cluster says it leads: a run of no level.
for system in stepraft etcd; do
    bench --target "$system" --nodes "$(nodes_of "$system")" --clients 0 --reads 0 --seconds 1
done
check_alive

# --- runs ------------------------------------------------------------------------------------
# A field of a flat JSON object (numbers and plain strings; null as "null").
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }
results=$tmp/results.jsonl
row_format="%-9s %-18s %7s %5s %10s %8s %8s %9s %9s %9s %10s %6s\n"
number() { if [ "$1" = null ] || [ -z "$1" ]; then echo -; else printf "%.${2}f" "$1"; fi; }
print_row() {
    local line=$1
    printf "$row_format" "$(field target "$line")" "$(field operation "$line")" \
        "$(field clients "$line")" "$(field round "$line")" "$(number "$(field per_second "$line")" 0)" \
        "$(number "$(field p50_ms "$line")" 2)" "$(number "$(field p99_ms "$line")" 2)" \
        "$(number "$(field p999_ms "$line")" 2)" "$(number "$(field max_ms "$line")" 2)" \
        "$(number "$(field longest_gap_ms "$line")" 0)" "$(field leader_changes "$line")" \
        "$(field errors "$line")"
}

# Adds the round to the JSON line in $tmp/out, appends it to file $2 and prints it.
record() { # round file
    local line
    line=$(cat "$tmp/out")
    line="{\"round\":$1,${line#\{}"
    echo "$line" >>"$2"
    print_row "$line"
}

run() { # system round bench-arguments...
    local system=$1 round=$2
    shift 2
    # A pause, so that what the previous run left behind (the other system's background
    # writes, compaction) settles before this one starts.
    sleep 1
    bench --target "$system" --nodes "$(nodes_of "$system")" --seconds "$seconds" --json "$@"
    record "$round" "$results"
    check_alive
}

# A failover run: $failover_clients clients (spread over the nodes) write for 9 s; after 3 s
# the leader is killed with SIGKILL. The run's longest gap is the failover time. Then the
# killed node is restarted on its data, and the next run waits until a node leads and the
# restarted one has had 3 s to catch up.
failover() { # system round
    local system=$1 round=$2 leader i slot pid status=0
    local addresses
    sleep 1
    "$bin" bench --target "$system" --nodes "$(nodes_of "$system")" --print-leader \
        >"$tmp/leader" 2>>"$tmp/bench.log" || { say "compare-etcd: no $system leader"; exit 1; }
    leader=$(cat "$tmp/leader")
    IFS=, read -r -a addresses <<<"$(nodes_of "$system")"
    for i in 1 2 3; do [ "${addresses[i - 1]}" = "$leader" ] && break; done
    [ "${addresses[i - 1]}" = "$leader" ] || { say "compare-etcd: leader $leader is no $system node"; exit 1; }
    if [ "$system" = stepraft ]; then slot=$((2 * (i - 1))); else slot=$((2 * (i - 1) + 1)); fi
    pid=${pids[slot]}
    "$bin" bench --value-bytes 100 --connect spread --target "$system" --nodes "$(nodes_of "$system")" \
        --clients "$failover_clients" --reads 0 --seconds 9 --json >"$tmp/out" 2>>"$tmp/bench.log" &
    bench_pid=$!
    sleep 3
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    wait "$bench_pid" || status=$?
    bench_pid=""
    [ $status -eq 0 ] || { say "compare-etcd: the $system failover run failed ($status)"; exit 1; }
    sed -i 's/"operation":"write"/"operation":"failover"/' "$tmp/out"
    record "$round" "$results"
    start_node "$system" "$i"
    bench --target "$system" --nodes "$(nodes_of "$system")" --clients 0 --reads 0 --seconds 1
    sleep 3
    check_alive
}

# Memory (RSS now and at its peak), CPU time (user + system since start) and data size of
# every node.
print_resources() {
    local i pid name rss peak cpu data ticks
    printf "%-11s %8s %10s %10s %8s %8s\n" node pid "RSS" "peak RSS" "CPU s" data
    ticks=$(getconf CLK_TCK)
    for i in "${!pids[@]}"; do
        pid=${pids[i]} name=${names[i]}
        rss=$(awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")
        peak=$(awk '/^VmHWM:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")
        # Fields 14 and 15 of /proc/PID/stat, counted after the command's closing parenthesis.
        cpu=$(sed 's/.*) //' "/proc/$pid/stat" | awk -v t="$ticks" '{ printf "%.1f", ($12 + $13) / t }')
        case "$name" in stepraft-*) data=$tmp/stepraft/node-${name#stepraft-} ;; *) data=$tmp/etcd/$name ;; esac
        printf "%-11s %8s %10s %10s %8s %8s\n" "$name" "$pid" "$rss" "$peak" "$cpu" "$(du -sh "$data" | cut -f1)"
    done
}

cat <<EOF
stepraft-kv ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")) and etcd $etcd_version, 3 nodes each on loopback, fsync on
data under $tmp ($filesystem), $(nproc) cores, $(uname -sr)
$rounds round(s) of ${seconds}s runs, interleaved; write levels $levels; read level ${read_clients} clients; 100-byte values
clients start at: $connect; one keep-alive HTTP/JSON connection per client, the same load generator for both

EOF
header() {
    printf "$row_format" system operation clients round "ops/s" "p50 ms" "p99 ms" "p99.9 ms" "max ms" \
        "gap ms" "leader chg" errors
}
if [ "$memory_writes" -gt 0 ]; then
    echo "$memory_writes writes to new keys, 64 clients, each fresh cluster in turn"
    header
    for system in stepraft etcd; do
        sleep 1
        bench --target "$system" --nodes "$(nodes_of "$system")" --clients 64 --reads 0 \
            --writes "$memory_writes" --seconds 600 --json
        record 0 "$tmp/memory.jsonl"
    done
    # What the writes left behind in the background (compaction, snapshots) settles first.
    sleep 3
    check_alive
    echo
    echo "nodes after $memory_writes writes (RSS now and at its peak; CPU: user + system time since start; data: du -sh)"
    print_resources
    echo
fi
header
for round in $(seq 1 "$rounds"); do
    for clients in "${level_list[@]}"; do
        [ "$clients" -gt 0 ] || continue
        for system in stepraft etcd; do run "$system" "$round" --clients "$clients" --reads 0; done
    done
    if [ "$read_clients" -gt 0 ]; then
        for system in stepraft etcd; do run "$system" "$round" --clients 0 --reads "$read_clients"; done
    fi
    if [ "$failover_clients" -gt 0 ]; then
        for system in stepraft etcd; do failover "$system" "$round"; done
    fi
done
echo "(gap: the longest time in the run in which no request succeeded; for failover, the time from the"
echo " last write acknowledged by the killed leader to the first acknowledged after it; leader chg: the rise"
echo " of the highest Raft term during the run, i.e. elections; errors: failed requests)"

# --- medians and ratios --------------------------------------------------------------------
median() { # numbers on stdin, one a line ("null" skipped)
    grep -v '^null$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# The median of field $3 over the runs of system $1 and level "$2" (operation:clients).
median_of() {
    local operation=${2%%:*} clients=${2##*:}
    while read -r line; do
        [ "$(field target "$line")" = "$1" ] && [ "$(field operation "$line")" = "$operation" ] \
            && [ "$(field clients "$line")" = "$clients" ] && field "$3" "$line"
    done <"$results" | median
}
sum_of() {
    local operation=${2%%:*} clients=${2##*:}
    while read -r line; do
        [ "$(field target "$line")" = "$1" ] && [ "$(field operation "$line")" = "$operation" ] \
            && [ "$(field clients "$line")" = "$clients" ] && field "$3" "$line"
    done <"$results" | grep -v '^null$' | awk '{ s += $1 } END { print s + 0 }'
}
ratio() { if [ "$1" = null ] || [ "$2" = null ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; fi; }

groups=()
for clients in "${level_list[@]}"; do [ "$clients" -gt 0 ] && groups+=("write:$clients"); done
[ "$read_clients" -gt 0 ] && groups+=("linearizable-read:$read_clients")
[ "$failover_clients" -gt 0 ] && groups+=("failover:$failover_clients")
echo
echo "medians over $rounds round(s) (leader chg and errors: totals)"
medians_format="%-9s %-18s %7s %10s %8s %8s %9s %9s %9s %10s %6s\n"
printf "$medians_format" system operation clients "ops/s" "p50 ms" "p99 ms" "p99.9 ms" "max ms" "gap ms" \
    "leader chg" errors
for group in "${groups[@]}"; do
    for system in stepraft etcd; do
        printf "$medians_format" "$system" "${group%%:*}" "${group##*:}" \
            "$(number "$(median_of $system "$group" per_second)" 0)" \
            "$(number "$(median_of $system "$group" p50_ms)" 2)" "$(number "$(median_of $system "$group" p99_ms)" 2)" \
            "$(number "$(median_of $system "$group" p999_ms)" 2)" "$(number "$(median_of $system "$group" max_ms)" 2)" \
            "$(number "$(median_of $system "$group" longest_gap_ms)" 0)" \
            "$(sum_of $system "$group" leader_changes)" "$(sum_of $system "$group" errors)"
    done
done
echo
echo "ratio stepraft/etcd of the medians (ops/s: above 1 is stepraft faster; latency: below 1 is stepraft quicker)"
printf "%-18s %7s %7s %7s %7s %9s %7s %7s\n" operation clients "ops/s" p50 p99 p99.9 max gap
for group in "${groups[@]}"; do
    row=("${group%%:*}" "${group##*:}")
    for name in per_second p50_ms p99_ms p999_ms max_ms longest_gap_ms; do
        row+=("$(ratio "$(median_of stepraft "$group" $name)" "$(median_of etcd "$group" $name)")")
    done
    printf "%-18s %7s %7s %7s %7s %9s %7s %7s\n" "${row[@]}"
done

# --- resources -------------------------------------------------------------------------------
echo
echo "nodes at the end (RSS now and at its peak; CPU: user + system time since start, or since the restart"
echo "after a failover run; data: du -sh)"
print_resources
