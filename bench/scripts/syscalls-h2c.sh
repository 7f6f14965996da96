#!/usr/bin/env bash
# System calls per request of the sample under h2c load: `strace -f -c` on the server while h2load runs.
# Usage: bench/scripts/syscalls-h2c.sh [sample args...]   e.g.  --transport sockets   or   --transport epoll
# The sample is pinned to CPU 1 and h2load to CPU 0, as in the bench; it runs from its Release build
# (dotnet build -c Release samples/WebApp first). strace slows the server several times over, so compare counts per
# request between servers measured this way, never the rates.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${PORT:-5097}
warm=${WARMUP_SECONDS:-30}
measure=${MEASURE_SECONDS:-15}
for tool in h2load strace taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y nghttp2-client strace util-linux" >&2; exit 2; }
done
dll=samples/WebApp/bin/Release/net10.0/WebApp.dll
[ -f "$dll" ] || { echo "build the sample first: dotnet build -c Release samples/WebApp" >&2; exit 2; }
url=http://127.0.0.1:$port/plaintext
log=$(mktemp)
taskset -c 1 dotnet "$dll" --urls "http://127.0.0.1:$port" --Kestrel:EndpointDefaults:Protocols Http2 \
  --Logging:LogLevel:Default Warning "$@" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  h2load -n 1 -c 1 "$url" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "warm-up: $warm s"
taskset -c 0 h2load -c 64 -m 10 -D "$warm" "$url" >/dev/null
out=$(mktemp)
strace -f -c -o "$out" -p "$server" &
tracer=$!
sleep 1
requests=$(taskset -c 0 h2load -c 64 -m 10 -D "$measure" "$url" | awk '/^requests:/ {print $8}')
sleep 1
kill -INT $tracer; wait $tracer || true
echo "requests completed under strace: $requests"
awk -v n="$requests" 'NR>2 && $NF != "total" && $4 ~ /^[0-9]+$/ {printf "%-16s %10d calls  %8.4f per request\n", $NF, $4, $4/n}' "$out" | sort -k2 -n -r | head -15
rm -f "$out"
