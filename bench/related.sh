#!/usr/bin/env bash
# Related reading: tidings against scikit-learn (TF-IDF + cosine) and Hugo's related content, on stores made by
# ../shared/corpus/gen-corpus.py, measuring precision@5 (topics.json is ground truth), wall time and peak memory.
#
#   bench/related.sh [SIZES...]          default: 1000 10000 100000
#
# Idempotent setup: a Python venv with scikit-learn (pip), Debian's hugo and GNU time (apt-get), corpora under
# $BENCH_DIR (default /tmp/related-bench; never inside the repository). Results: $BENCH_DIR/results.jsonl (one
# JSON object per measurement) and a Markdown table on stdout. Environment: RUNS (tidings runs, median taken;
# default 3), PEER_RUNS (peer runs at <= 10k articles; default 3; 1 above), PEER_TIMEOUT (seconds; default 900),
# PEERS (default "sklearn hugo"; empty: tidings only).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
bench_dir=${BENCH_DIR:-/tmp/related-bench}
venv=${BENCH_VENV:-/tmp/bench-venv}
runs=${RUNS:-3}
peer_runs=${PEER_RUNS:-3}
peer_timeout=${PEER_TIMEOUT:-900}
peers_to_run=${PEERS-sklearn hugo}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
peers="$repo/bench/related_peers.py"
results="$bench_dir/results.jsonl"
mkdir -p "$bench_dir"

log() { printf '%s\n' "$*" >&2; }

# ---- setup (idempotent) ----
need_apt=()
command -v hugo >/dev/null || need_apt+=(hugo)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! "$venv/bin/python" -c 'import sklearn, numpy' 2>/dev/null; then
  log "installing scikit-learn and numpy into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  PIP_CACHE_DIR=${PIP_CACHE_DIR:-/tmp/bench-pip-cache} "$venv/bin/pip" install -q scikit-learn numpy
fi
py="$venv/bin/python"

log "building tidings (release) and the related bench"
(cd "$repo" && cargo build --release -q)
tidings="$repo/target/release/tidings"
bench_bin=$(cd "$repo" && cargo bench --bench related --no-run 2>&1 | grep -o 'target/release/deps/related-[0-9a-f]*' | tail -1)
bench_bin="$repo/$bench_bin"

# Runs a command under GNU time with its stdout in file $1; prints "wall_seconds max_rss_kb exit_code".
timed() {
  local out=$1; shift
  local t; t=$(mktemp)
  local rc=0
  /usr/bin/time -o "$t" -f '%e %M' "$@" >"$out" 2>"$t.err" || rc=$?
  echo "$(tail -1 "$t") $rc"
  rm -f "$t" "$t.err"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# merge JSON KEY VALUE...: the JSON object with numeric KEY=VALUE pairs added.
merge() {
  "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); a=sys.argv[2:]
num = lambda v: int(v) if v.lstrip("-").isdigit() else float(v)
d.update({a[i]: num(a[i+1]) for i in range(0, len(a), 2)}); print(json.dumps(d))' "$@"
}

record() { echo "$1" >>"$results"; echo "$1"; }

for n in "${sizes[@]}"; do
  corpus="$bench_dir/corpus-$n"
  if [ ! -f "$corpus/topics.json" ] || [ ! -d "$corpus/content/posts" ]; then
    log "generating $n articles into $corpus"
    BENCH_VENV="$venv" "$py" "$shared/corpus/gen-corpus.py" --n "$n" --out "$corpus" --hugo
  fi
  "$py" "$peers" tidings-config "$corpus" "$bench_dir/public-$n" >"$corpus/tidings.toml"
  "$py" "$peers" hugo-site "$corpus" "$bench_dir/hugo-$n"
  these_peer_runs=$peer_runs
  [ "$n" -le 10000 ] || these_peer_runs=1

  # tidings, library: related reading alone (index + every list), store loading timed apart.
  log "[$n] tidings related (library bench, median of $runs)"
  read -r _ rss rc < <(timed "$bench_dir/lib.out" "$bench_bin" --config "$corpus/tidings.toml" --topics "$corpus/topics.json" --runs "$runs")
  [ "$rc" = 0 ] || { log "the related bench failed"; exit 1; }
  record "$(merge "$(tail -1 "$bench_dir/lib.out")" max_rss_kb "$rss")"

  # tidings, binary: the whole `tidings build` (read + parse the store, feeds, related.json), from scratch.
  log "[$n] tidings build (binary, median of $runs)"
  walls=(); rss=0
  for _ in $(seq "$runs"); do
    rm -rf "$bench_dir/public-$n"
    read -r wall kb rc < <(timed /dev/null "$tidings" --config "$corpus/tidings.toml" -q build)
    [ "$rc" = 0 ] || { log "tidings build failed"; exit 1; }
    walls+=("$wall"); [ "$kb" -gt "$rss" ] && rss=$kb
  done
  p=$("$py" "$peers" precision-json "$corpus" "$bench_dir/public-$n/related.json")
  record "$(merge '{"peer": "tidings build"}' articles "$n" wall_s "$(printf '%s\n' "${walls[@]}" | median)" \
    max_rss_kb "$rss" precision_at_5 "$p")"

  # scikit-learn: TfidfVectorizer(stop_words="english") + cosine, exact top-5, text only.
  if [[ " $peers_to_run " == *" sklearn "* ]]; then
    log "[$n] scikit-learn ($these_peer_runs run(s), timeout ${peer_timeout}s)"
    walls=(); inner=(); rss=0
    for _ in $(seq "$these_peer_runs"); do
      read -r wall kb rc < <(timed "$bench_dir/sklearn.out" timeout "$peer_timeout" "$py" "$peers" sklearn "$corpus")
      [ "$rc" = 0 ] || break
      walls+=("$wall"); [ "$kb" -gt "$rss" ] && rss=$kb
      inner+=("$("$py" -c 'import json,sys; print(json.load(sys.stdin)["related_s"])' <"$bench_dir/sklearn.out")")
    done
    if [ ${#walls[@]} -eq "$these_peer_runs" ]; then
      record "$(merge "$(tail -1 "$bench_dir/sklearn.out")" wall_s "$(printf '%s\n' "${walls[@]}" | median)" \
        related_s "$(printf '%s\n' "${inner[@]}" | median)" max_rss_kb "$rss")"
    else
      record "{\"peer\": \"scikit-learn\", \"articles\": $n, \"timed_out_after_s\": $peer_timeout}"
    fi
  fi

  # Hugo: related content with tags (100) and category (20) as indices; the home page lists every page's top 5.
  if [[ " $peers_to_run " == *" hugo "* ]]; then
    log "[$n] hugo ($these_peer_runs run(s), timeout ${peer_timeout}s)"
    walls=(); rss=0
    for _ in $(seq "$these_peer_runs"); do
      rm -rf "$bench_dir/hugo-$n/public" "$bench_dir/hugo-$n/resources"
      read -r wall kb rc < <(timed /dev/null timeout "$peer_timeout" hugo --quiet --source "$bench_dir/hugo-$n" \
        --destination "$bench_dir/hugo-$n/public")
      [ "$rc" = 0 ] || break
      walls+=("$wall"); [ "$kb" -gt "$rss" ] && rss=$kb
    done
    if [ ${#walls[@]} -eq "$these_peer_runs" ]; then
      p=$("$py" "$peers" precision-hugo "$corpus" "$bench_dir/hugo-$n/public/index.html")
      record "$(merge '{"peer": "hugo"}' articles "$n" wall_s "$(printf '%s\n' "${walls[@]}" | median)" \
        max_rss_kb "$rss" precision_at_5 "$p")"
    else
      record "{\"peer\": \"hugo\", \"articles\": $n, \"timed_out_after_s\": $peer_timeout}"
    fi
  fi
done
