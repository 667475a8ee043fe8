#!/usr/bin/env bash
# Profile our server under one bench preset with py-spy (sampling, native off).
#   bench/profile.sh small-room [extra bench flags...]
# Writes bench/results/profile-<preset>.{svg,collapsed} and prints the top
# functions by own time and by inclusive time. Installs py-spy into
# bench/results/.venv-prof (not the project venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-small-room}; shift || true
out=bench/results; mkdir -p "$out"
prof=$out/.venv-prof
[ -x "$prof/bin/py-spy" ] || { python3 -m venv "$prof" && "$prof/bin/pip" install -q py-spy; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db=$(mktemp -d)/prof.db
rt=(); [ "$(id -u)" = 0 ] && command -v chrt >/dev/null && rt=(chrt -f 10)
COLLAB_RATE_LIMIT=0 taskset -c 0 "${rt[@]}" .venv/bin/intelgraph-collab serve \
  --host 127.0.0.1 --port "$port" --db "$db" >"$out/profile-server.log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
taskset -c 1 "$prof/bin/py-spy" record --pid "$srv" --rate 250 --nonblocking --format raw \
  -o "$out/profile-$preset.collapsed" >/dev/null 2>&1 &
spy=$!
sleep 0.5
PYTHONPATH=src taskset -c 1 "${rt[@]}" .venv/bin/python -m intelgraph_collab.bench \
  --url "ws://127.0.0.1:$port" --preset "$preset" --server-pid "$srv" --no-progress "$@" || true
kill -INT $spy; wait $spy 2>/dev/null || true
python3 - "$out/profile-$preset.collapsed" <<'PY'
import collections, sys
own, incl, total = collections.Counter(), collections.Counter(), 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n); total += n
    frames = stack.split(";")
    own[frames[-1]] += n
    for f in set(frames):
        incl[f] += n
print(f"{total} samples")
for title, c in (("own time", own), ("inclusive time", incl)):
    print(f"--- top by {title}")
    for f, n in c.most_common(25):
        print(f"{100*n/total:5.1f}%  {f}")
PY
