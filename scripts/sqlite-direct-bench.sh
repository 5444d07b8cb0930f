#!/bin/sh
# One 1:1 run on a fresh SQLite data folder (issue #23):
#   scripts/sqlite-direct-bench.sh BINDIR RATE [DURATION]
# BINDIR holds parley and parley-bench (go build -o BINDIR/ ./cmd/parley ./cmd/parley-bench).
# Migrates a new folder, seeds 200 users, runs parley-bench direct at RATE msg/s, prints its
# summary, the server's CPU time over the run (clock ticks of utime+stime from /proc), the
# committer's batch metrics and the load average, then removes the folder.
set -eu
bin=$1 rate=$2 dur=${3:-15s}
work=$(mktemp -d /tmp/sqlite-run.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
"$bin/parley" --data "$work/data" --addr 127.0.0.1:27480 --log-level error &
pid=$!
sleep 1
kill "$pid"; wait "$pid" 2>/dev/null || true
"$bin/parley-bench" seed --db "sqlite:$work/data/parley.db" --users 200 --out "$work/users.json" >/dev/null
"$bin/parley" --data "$work/data" --addr 127.0.0.1:27480 --auth-rate-limit 0 \
	--metrics-addr 127.0.0.1:27490 --log-level warn &
pid=$!
sleep 1.5
uptime
before=$(awk '{print $14+$15}' "/proc/$pid/stat")
"$bin/parley-bench" direct --url http://127.0.0.1:27480 --users-file "$work/users.json" --users 200 \
	--rate "$rate" --duration "$dur"
after=$(awk '{print $14+$15}' "/proc/$pid/stat")
echo "server CPU: $((after - before)) clock ticks ($(getconf CLK_TCK) a second)"
curl -s 127.0.0.1:27490/metrics | grep '^parley_commit_\(batch_size\|duration_seconds\)_\(sum\|count\)'
uptime
