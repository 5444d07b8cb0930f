#!/bin/sh
# One 1:1 run on a fresh PostgreSQL database (issue #23):
#   scripts/pg-direct-bench.sh BINDIR RATE [DURATION]
# BINDIR holds parley and parley-bench (go build -o BINDIR/ ./cmd/parley ./cmd/parley-bench).
# Seeds 200 users, runs parley-bench direct at RATE msg/s, prints its summary,
# the committer's batch metrics and the load average, then drops the database.
set -eu
bin=$1 rate=$2 dur=${3:-15s}
name=pgc_$$_$(date +%s)
pg=postgres://postgres@127.0.0.1:5432
work=$(mktemp -d /tmp/pgc-run.XXXXXX)
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $name"
cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $name" || true
	rm -rf "$work"
}
trap cleanup EXIT
dsn="$pg/$name?sslmode=disable"
"$bin/parley-bench" seed --db "$dsn" --users 200 --out "$work/users.json" >/dev/null
"$bin/parley" --data "$work/data" --db "$dsn" --addr 127.0.0.1:27380 --auth-rate-limit 0 \
	--metrics-addr 127.0.0.1:27390 --log-level warn &
pid=$!
sleep 2
uptime
"$bin/parley-bench" direct --url http://127.0.0.1:27380 --users-file "$work/users.json" --users 200 \
	--rate "$rate" --duration "$dur"
curl -s 127.0.0.1:27390/metrics | grep "^parley_commit_duration_seconds_bucket\|^parley_commit_\(batch_size\|duration_seconds\)_\(sum\|count\)"
uptime
