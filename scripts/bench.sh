#!/usr/bin/env bash
# Reproducible HTTP benchmark of the case API on SQLite and PostgreSQL (wrk from Debian).
# Usage: bash scripts/bench.sh [seconds]   — prints a table; fails if any request errored
# or if the number of cases created differs from the number of 201 answers.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
BIN=./target/release/linli
PW='Bench-Pass-2026'
PG_ADMIN=${LINLI_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=18999
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"category":"ldd","description":"压测：楼道的灯坏了","lng":108.4770,"lat":28.5415,"reporter_phone":"13800001111"}'
LUA
cat > "$work/get.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA

run() { # name path script
  local out; out=$(TOKEN=$TOKEN wrk -t2 -c32 -d"${DUR}s" --latency -s "$work/$3" "http://127.0.0.1:$PORT$2")
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local total; total=$(echo "$out" | awk '/requests in/ {print $1}')
  printf '| %-10s | %-26s | %10s | %8s | %8s | %6s |\n' "$BACKEND" "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
  [ -z "$non2xx" ] || { echo "errors during $1" >&2; exit 1; }
  LAST_TOTAL=$total
}

count_cases() {
  curl -sf "http://127.0.0.1:$PORT/api/v1/overview" -H "Authorization: Bearer $TOKEN" | python3 -c 'import sys,json;print(json.load(sys.stdin)["cases_total"])'
}

echo "| backend    | request                    |      req/s |      p50 |      p99 | errors |"
echo "|------------|----------------------------|------------|----------|----------|--------|"
for BACKEND in sqlite postgres; do
  url=""
  if [ "$BACKEND" = postgres ]; then
    db="linli_bench_$$"
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db" -qc "CREATE DATABASE $db" >/dev/null
    url="${PG_ADMIN%/*}/$db"
  fi
  LINLI_DATA_DIR="$work/$BACKEND" LINLI_DATABASE_URL="$url" LINLI_BIND="127.0.0.1:$PORT" LINLI_DEMO_PASSWORD="$PW" RUST_LOG=warn $BIN serve >"$work/$BACKEND.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"heping\",\"password\":\"$PW\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
  before=$(count_cases)
  run "POST /api/v1/cases" "/api/v1/cases" post.lua
  created=$LAST_TOTAL
  after=$(count_cases)
  # wrk stops with up to 32 requests in flight: those may be written without being counted.
  diff=$((after - before))
  { [ "$diff" -ge "$created" ] && [ "$diff" -le $((created + 32)) ]; } || { echo "count mismatch: $diff cases for $created answers" >&2; exit 1; }
  number=$(curl -sf "http://127.0.0.1:$PORT/api/v1/cases?per_page=1" -H "Authorization: Bearer $TOKEN" | python3 -c 'import sys,json;print(json.load(sys.stdin)["items"][0]["number"])')
  run "GET /api/v1/cases/{number}" "/api/v1/cases/$number" get.lua
  run "GET /api/v1/cases (20 rows)" "/api/v1/cases?per_page=20" get.lua
  run "GET /api/v1/rates (streets)" "/api/v1/rates?level=street" get.lua
  kill $pid; wait $pid 2>/dev/null || true
  [ "$BACKEND" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
