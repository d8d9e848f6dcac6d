#!/usr/bin/env bash
# Load on the web side: `tidings serve` (release build) on the sample site, and Debian's wrk on 127.0.0.1,
# each run bounded in time. Prints requests/s, p99 latency and errors per endpoint (the figures in BENCHMARKS.md).
#
#   bench/web.sh [--duration 10s] [--connections 32] [--threads 2]
#
#   POST /subscribe       a new address each request (a wrk Lua script): sign-up stored pending in SQLite and a
#                         confirmation message composed and written to the file outbox (in the background).
#                         The sign-up limits are raised so the bench measures the work, not the 429 page.
#   GET /rss.xml          the site feed (ETag computed once, file read per request)
#   GET /rss.xml 304      the same with If-None-Match: the answer a feed reader polling an unchanged feed gets
#   GET /feed.json        the JSON feed
#   GET /subscribe        the form page (Handlebars render)
#
# Installs wrk (Debian) when missing. Everything stays on 127.0.0.1; the work folder is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
connections=32
threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "usage: bench/web.sh [--duration 10s] [--connections 32] [--threads 2]" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

cargo build --release --locked --quiet
bin="$PWD/target/release/tidings"

work="$(mktemp -d /tmp/tidings-web-bench.XXXXXX)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cp config.toml "$work/"
mkdir -p "$work/data"
cp -r data/articles "$work/data/"
[ -d templates ] && cp -r templates "$work/"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

export TIDINGS_SECRET=bench-secret
export TIDINGS_SERVER_LISTEN="127.0.0.1:$port"
export TIDINGS_NEWSLETTER_PUBLIC_URL="$base/"
export TIDINGS_SERVER_SIGNUPS_PER_HOUR_PER_IP=1000000000
export TIDINGS_SERVER_SIGNUPS_PER_HOUR_PER_ADDRESS=1000000000
export TIDINGS_MAIL_TRANSPORT=file
"$bin" --config "$work/config.toml" -q build
"$bin" --config "$work/config.toml" -q serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  curl -sf "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$base/healthz" >/dev/null || { echo "tidings serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

cat > "$work/subscribe.lua" <<'LUA'
-- A new address per request, from every wrk thread (each thread's number, a global set by setup, keeps them apart).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
function request()
  counter = counter + 1
  local body = "email=reader" .. tid .. "x" .. counter .. "%40example.com&name=Bench&digest=weekly"
  return wrk.format("POST", "/subscribe", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
LUA
etag="$(curl -sI "$base/rss.xml" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')"

printf '%-22s %12s %10s %8s %10s\n' endpoint "requests/s" "p99" errors requests
run() {
  local name="$1"; shift
  local out
  out="$(wrk --latency -t"$threads" -c"$connections" -d"$duration" "$@")"
  local rps p99 requests errors non2xx socket
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")"
  socket="$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")"
  errors=$(( ${non2xx:-0} + ${socket:-0} ))
  printf '%-22s %12s %10s %8s %10s\n' "$name" "$rps" "$p99" "$errors" "$requests"
}
run "POST /subscribe" -s "$work/subscribe.lua" "$base/subscribe"
run "GET /rss.xml" "$base/rss.xml"
run "GET /rss.xml (304)" -H "If-None-Match: $etag" "$base/rss.xml"
run "GET /feed.json" "$base/feed.json"
run "GET /subscribe" "$base/subscribe"

pending="$("$bin" --config "$work/config.toml" subscribers list --format csv | grep -c ',pending,' || true)"
sleep 1
mails="$(find "$work/outbox" -name 'confirm.*.eml' | wc -l)"
echo "sign-ups stored pending: $pending; confirmation messages written: $mails"
