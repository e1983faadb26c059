#!/usr/bin/env bash
# Reproducible HTTP benchmark of the case API on SQLite and PostgreSQL (wrk from Debian).
# Usage: bash scripts/bench.sh [seconds]   — prints a table; fails if any request errored
# or if the number of cases created differs from the number of 201 answers.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
# BIN=path/to/linli compares another build (A/B); by default the tree's release build.
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=./target/release/linli; }
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
cat > "$work/open311.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "service_code=ldd&lat=28.5415&long=108.4770&description=%E5%8E%8B%E6%B5%8B%EF%BC%9A%E8%B7%AF%E7%81%AF%E4%B8%8D%E4%BA%AE&phone=13800001111&api_key=" .. os.getenv("TOKEN")
LUA
cat > "$work/get.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA
# One transition per case from a list ($CASES), split between the two wrk threads. When a
# thread's share is used up it sends cheap /healthz requests until it stops, so no case is
# stepped twice (that would be a 409, counted as an error). wrk always runs for its whole
# duration and divides by it, so a phase that runs out of cases early would report the
# previous phase's speed: each thread notes when its share was answered, and `done` prints the
# steps per second over that time (STEPS_PER_SEC, read by `run`).
cat > "$work/act.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_ts; int clock_gettime(int clk, bench_ts *tp); ]]
local function now() local t = ffi.new("bench_ts"); ffi.C.clock_gettime(1, t); return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9 end
local n = 0
local threads = {}
function setup(thread) thread:set("tid", n); n = n + 1; table.insert(threads, thread) end
function init(args)
  t0 = now()
  t1 = 0
  nums = {}
  for line in io.lines(os.getenv("CASES")) do nums[#nums + 1] = line end
  per = math.floor(#nums / 2)
  sent, answered = 0, 0
  hdr = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}
  body = os.getenv("BODY")
end
function request()
  sent = sent + 1
  if sent > per then return wrk.format("GET", "/healthz") end
  return wrk.format("POST", "/api/v1/cases/" .. nums[tid * per + sent] .. "/actions", hdr, body)
end
function response(status, headers, body)
  answered = answered + 1
  if answered >= per then t1 = now(); wrk.thread:stop() end
end
function done(summary, latency, requests)
  local first, last, steps = math.huge, 0, 0
  for _, t in ipairs(threads) do
    first = math.min(first, t:get("t0"))
    -- A thread stopped by the duration before its share was answered: what it had.
    local finished = t:get("t1") > 0
    last = math.max(last, finished and t:get("t1") or now())
    steps = steps + (finished and t:get("per") or t:get("answered"))
  end
  print(string.format("STEPS_PER_SEC %.2f", steps / (last - first)))
end
LUA

busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # machine-wide busy jiffies
# Jiffies used by linli, and by all PostgreSQL server processes (its backends live as long as
# the pool's connections, so the sum over a run is theirs).
own() { awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0; }
pgs() { local t=0 p; for p in $(pgrep -u postgres 2>/dev/null); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }

run() { # name path script [seconds]
  local b0 l0 g0; b0=$(busy); l0=$(own); g0=$(pgs)
  local out; out=$(TOKEN=$TOKEN wrk -t2 -c32 -d"${4:-$DUR}s" --latency -s "$work/$3" "http://127.0.0.1:$PORT$2")
  local b1 l1 g1; b1=$(busy); l1=$(own); g1=$(pgs)
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  # A step phase's own figure: its steps over the time they took (see act.lua).
  if echo "$out" | grep -q '^STEPS_PER_SEC'; then rps=$(echo "$out" | awk '/^STEPS_PER_SEC/ {print $2}'); fi
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local total; total=$(echo "$out" | awk '/requests in/ {print $1}')
  # CPU time of the whole machine (server, database, wrk) per request: steadier than req/s
  # on a machine whose speed drifts, and what an A/B of two builds should compare.
  local per=$((1000000 / $(getconf CLK_TCK))) n=$((total > 0 ? total : 1))
  local cpu=$(( (b1 - b0) * per / n )) lcpu=$(( (l1 - l0) * per / n )) gcpu=$(( (g1 - g0) * per / n ))
  printf '| %-10s | %-34s | %10s | %8s | %8s | %6s | %10s | %5s | %5s |\n' "$BACKEND" "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu" "$lcpu" "$gcpu"
  [ -z "$non2xx" ] || { echo "errors during $1" >&2; exit 1; }
  LAST_TOTAL=$total
}

login() {
  curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$PW\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])'
}

sql() { # one column of a query, one value per line
  if [ "$BACKEND" = postgres ]; then psql "$url" -Atqc "$1"
  else python3 -c 'import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$work/$BACKEND/linli.db" "$1"; fi
}

count_cases() { sql "SELECT COUNT(*) FROM cases"; }

created_check() { # name before answers
  local after diff; after=$(count_cases); diff=$((after - $2))
  # wrk stops with up to 32 requests in flight: those may be written without being counted.
  { [ "$diff" -ge "$3" ] && [ "$diff" -le $(($3 + 32)) ]; } || { echo "count mismatch in $1: $diff cases for $3 answers" >&2; exit 1; }
}

step() { # action status-before status-after extra-json
  sql "SELECT number FROM cases WHERE id > $FIRST AND status = '$2' ORDER BY id" > "$work/cases.txt"
  local n; n=$(wc -l < "$work/cases.txt")
  local before; before=$(sql "SELECT COUNT(*) FROM cases WHERE id > $FIRST AND status = '$3'")
  CASES="$work/cases.txt" BODY="{\"action\":\"$1\"$4}" run "POST …/actions $1 ($n cases)" "/" act.lua $((DUR / 2 > 1 ? DUR / 2 : 1))
  local after; after=$(sql "SELECT COUNT(*) FROM cases WHERE id > $FIRST AND status = '$3'")
  [ $((after - before)) -gt 0 ] || { echo "no case reached $3" >&2; exit 1; }
}

echo "| backend    | request                            |      req/s |      p50 |      p99 | errors | CPU µs/req | linli |    pg |"
echo "|------------|------------------------------------|------------|----------|----------|--------|------------|-------|-------|"
for BACKEND in ${BACKENDS:-sqlite postgres}; do
  url=""
  if [ "$BACKEND" = postgres ]; then
    db="linli_bench_$$"
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db" -qc "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'" >/dev/null
    url="${PG_ADMIN%/*}/$db"
  fi
  LINLI_DATA_DIR="$work/$BACKEND" LINLI_DATABASE_URL="$url" LINLI_BIND="127.0.0.1:$PORT" LINLI_DEMO_PASSWORD="$PW" RUST_LOG=warn $BIN serve >"$work/$BACKEND.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  TOKEN=$(login heping)
  FIRST=$(sql "SELECT MAX(id) FROM cases")
  before=$(count_cases)
  run "POST /api/v1/cases" "/api/v1/cases" post.lua
  created_check "POST /api/v1/cases" "$before" "$LAST_TOTAL"
  before=$(count_cases)
  run "POST /open311/v2/requests.json" "/open311/v2/requests.json" open311.lua
  created_check "Open311" "$before" "$LAST_TOTAL"
  step register submitted registered ""
  step dispatch registered dispatched ',"assignee":"DW012"'
  TOKEN=$(login dw012)
  step accept dispatched accepted ""
  step finish accepted finished ""
  TOKEN=$(login heping)
  # The writes above grew the case table from 1,500 to tens of thousands of rows in a minute;
  # PostgreSQL's autovacuum would, within its next round, refresh the planner's statistics and
  # the visibility map that lets list counts read the indexes alone (inserts trigger it too).
  if [ "$BACKEND" = postgres ]; then psql "$url" -qc "VACUUM ANALYZE" >/dev/null; fi
  number=$(sql "SELECT number FROM cases WHERE id > $FIRST ORDER BY id LIMIT 1")
  run "GET /api/v1/cases/{number}" "/api/v1/cases/$number" get.lua
  run "GET /api/v1/cases (20 rows)" "/api/v1/cases?per_page=20" get.lua
  run "GET /api/v1/rates (streets)" "/api/v1/rates?level=street" get.lua
  run "GET /open311/v2/services.json" "/open311/v2/services.json" get.lua
  commits=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^linli_(db_(write_transactions|commits)|case_cache_(hits|misses))_total/ {printf "%s=%s ", $1, $2}')
  echo "|            | group commit: $commits |"
  kill $pid; wait $pid 2>/dev/null || true
  # (An if, not &&: a loop ending on a false test made BACKENDS=sqlite exit 1 with no error.)
  if [ "$BACKEND" = postgres ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; fi
done
