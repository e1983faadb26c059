#!/usr/bin/env bash
# Reads on PostgreSQL while cases are created at a set rate (0, 10, 100, 1000 a second, by
# one Python client): the case cache (src/db/cache.rs) forgets every list when a case changes,
# so this shows what that costs. Usage: bash scripts/bench_mixed.sh (wrk, psql, python3).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=./target/release/linli; }
PORT=18998; PW='Bench-Pass-2026'
db="linli_mixed_$$"; admin=${LINLI_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$admin" -qc "DROP DATABASE IF EXISTS $db" -qc "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'" >/dev/null 2>&1
url="${admin%/*}/$db"; work=$(mktemp -d)
LINLI_DATA_DIR=$work LINLI_DATABASE_URL=$url LINLI_BIND=127.0.0.1:$PORT LINLI_DEMO_PASSWORD=$PW RUST_LOG=warn $BIN serve >$work/log 2>&1 &
pid=$!; trap 'kill $pid 2>/dev/null; kill $(jobs -p) 2>/dev/null; sleep 1; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -XPOST http://127.0.0.1:$PORT/api/v1/auth/login -H 'content-type: application/json' -d "{\"username\":\"heping\",\"password\":\"$PW\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
export TOKEN
echo 'wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")' > $work/get.lua
num=$(psql "$url" -Atqc "SELECT number FROM cases ORDER BY id DESC LIMIT 1")
for rate in 0 10 100 1000; do
  if [ $rate -gt 0 ]; then
    python3 - "$rate" "$PORT" <<'PY' &
import sys, time, os, urllib.request, json
rate, port = int(sys.argv[1]), sys.argv[2]
body = json.dumps({"category":"ldd","description":"混合负载","lng":108.4770,"lat":28.5415}).encode()
t0 = time.time(); n = 0
while time.time() - t0 < 8:
    n += 1
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/cases", data=body, headers={"Content-Type":"application/json","Authorization":"Bearer "+os.environ["TOKEN"]})
    try: urllib.request.urlopen(req).read()
    except Exception as e: print("err", e, file=sys.stderr)
    d = t0 + n / rate - time.time()
    if d > 0: time.sleep(d)
PY
    w=$!
  fi
  sleep 0.5
  l=$(wrk -t2 -c32 -d5s -s $work/get.lua "http://127.0.0.1:$PORT/api/v1/cases?per_page=20" | awk '/Requests\/sec/ {print $2}')
  g=$(wrk -t2 -c32 -d5s -s $work/get.lua "http://127.0.0.1:$PORT/api/v1/cases/$num" | awk '/Requests\/sec/ {print $2}')
  [ $rate -gt 0 ] && wait $w
  echo "creations ${rate}/s: list $l req/s, GET one (an unchanged case) $g req/s"
done
curl -sf http://127.0.0.1:$PORT/metrics | grep '^linli_case_cache'
