#!/usr/bin/env bash
# Read latencies on a megacity-sized database (issue 4 §3). Builds the data set if the data
# directory has none, starts `linli serve` on it, times each read 30 times with curl (one at a
# time, so the numbers are latencies, not throughput), checks the answers, and prints a table
# and the server's resident memory.
#
# Usage: bash scripts/scale_reads.sh [cases] [data-dir]     (default 5000000, ./scale-data)
# On PostgreSQL: LINLI_DATABASE_URL=postgres://… bash scripts/scale_reads.sh [cases] [data-dir]
# (the data directory then holds only the key file).
# Generating 25,000,000 cases takes about 28 minutes and 34 GB of disk on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-5000000}
DIR=$(realpath -m "${2:-./scale-data}")
PW='Bench-Pass-2026'
PORT=18997
cargo build --release --quiet
BIN=$(pwd)/target/release/linli
export LINLI_DATA_DIR="$DIR" LINLI_DEMO_PASSWORD="$PW" RUST_LOG=error
mkdir -p "$DIR"
if [ -n "${LINLI_DATABASE_URL:-}" ]; then
  sq() { psql "$LINLI_DATABASE_URL" -Atc "$1"; }
  size() { sq "SELECT pg_size_pretty(pg_database_size(current_database()))"; }
else
  sq() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DIR/linli.db" "$1"; }
  size() { du -sh "$DIR/linli.db" | cut -f1; }
fi
if [ "$(sq "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%'" 2>/dev/null || echo 0)" = 0 ]; then
  $BIN demo --scale megacity --cases "$CASES"
fi
if ! $BIN user list 2>/dev/null | grep -q '^bjadmin\b'; then
  echo "$PW" | $BIN user add --role county_admin --scope 110000 --password-stdin bjadmin >/dev/null
fi
LINLI_BIND="127.0.0.1:$PORT" $BIN serve >"$DIR/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"bjadmin\",\"password\":\"$PW\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
total=$(sq "SELECT COUNT(*) FROM cases WHERE number LIKE 'BJ-%'")
grid=$(sq "SELECT grid_code FROM cases WHERE number LIKE 'BJ-%' AND status = 'accepted' ORDER BY id DESC LIMIT 1")
number=$(sq "SELECT number FROM cases WHERE number LIKE 'BJ-%' AND status = 'closed' ORDER BY id LIMIT 1 OFFSET 1000")
today=$(TZ=Asia/Shanghai date +%F)
month=$(TZ=Asia/Shanghai date -d '30 days ago' +%F)
year=$(TZ=Asia/Shanghai date -d '364 days ago' +%F)
# A community holds one case in 7,000: page 10 needs 200 of them (about 1.4 M cases in all).
cpage=$(( total >= 2000000 ? 10 : 5 ))

# name, path, python check on the JSON answer (j)
checks=(
  "rates: streets, last 30 days|/api/v1/rates?level=street&from=$month&to=$today|len(j['items'])==343"
  "rates: communities, last 30 days|/api/v1/rates?level=community&from=$month&to=$today|len(j['items'])>6000"
  "ranking: units, last year|/api/v1/rates?level=unit&from=$year&to=$today|len(j['items'])==300"
  "county overview|/api/v1/overview|j['cases_total']>0.9*$total and j['cases_overdue']>0"
  "rates: county, all time|/api/v1/rates?level=county|j['items'][0]['cases']>0.9*$total"
  "unit queue (BJ0001, open)|/api/v1/cases?unit=BJ0001&status=dispatched,accepted|len(j['items'])==20"
  "grid open cases|/api/v1/cases?grid=$grid&status=registered,dispatched,accepted|len(j['items'])>=1"
  "one case with history|/api/v1/cases/$number|len(j['history'])>=5"
  "list, 20 newest in scope|/api/v1/cases?per_page=20|len(j['items'])==20"
  "list, one community, page $cpage|/api/v1/cases?community=${grid:0:12}&per_page=20&page=$cpage|len(j['items'])==20 and all(c['community_code']=='${grid:0:12}' for c in j['items'])"
  "list, one street, page 50|/api/v1/cases?community=${grid:0:9}&per_page=20&page=50|len(j['items'])==20 and all(c['grid_code'].startswith('${grid:0:9}') for c in j['items'])"
  "search, county (top 20)|/api/v1/cases?q=%E4%B8%8B%E6%B0%B4%E9%81%93%E5%A0%B5%E5%A1%9E&per_page=20|len(j['items'])==20 and all(c['category']=='xsd' for c in j['items'])"
  "search, one community (top 20)|/api/v1/cases?q=%E4%B8%8B%E6%B0%B4%E9%81%93%E5%A0%B5%E5%A1%9E&community=${grid:0:12}&per_page=20|len(j['items'])>=1 and all(c['category']=='xsd' and c['community_code']=='${grid:0:12}' for c in j['items'])"
)
printf '\nlinli on %s cases (%s)\n\n' "$total" "$(size)"
echo "| read                                  | median ms | p95 ms | max ms |"
echo "|---------------------------------------|-----------|--------|--------|"
for c in "${checks[@]}"; do
  IFS='|' read -r name path check <<<"$c"
  body=$(curl -sf "http://127.0.0.1:$PORT$path" -H "Authorization: Bearer $TOKEN") || { echo "failed: $name" >&2; exit 1; }
  echo "$body" | python3 -c "import sys,json; j=json.load(sys.stdin); assert $check, '''$name: check failed'''" || exit 1
  times=$(for _ in $(seq 1 30); do curl -sf -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$path" -H "Authorization: Bearer $TOKEN"; done)
  echo "$times" | python3 -c "
import sys
t = sorted(float(x) * 1000 for x in sys.stdin.read().split())
print('| %-37s | %9.1f | %6.1f | %6.1f |' % ('''$name''', t[len(t)//2], t[int(len(t)*0.95)-1], t[-1]))"
done
echo
echo "serve RSS: $(($(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024)) MB"
echo "in-place reads over budget, run again on the pool: $(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^linli_db_read_overflows_total/ {print $2}')"
