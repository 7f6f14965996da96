#!/usr/bin/env bash
# Where a server's CPU goes per request: `perf record -e cpu-clock -g` of the sample under load, with the JIT's
# perf map, summed by component (kernel, Kestrel, the transport, pipelines, the runtime) in CPU µs per request.
# Usage: bench/scripts/profile.sh <load> [sample args...]
#   <load>: h2c (h2load 64 × 10 on /plaintext), h2 (the same over TLS, ALPN h2), h1 (wrk 256 on /plaintext), h1-json
#   e.g.    bench/scripts/profile.sh h2c --transport sockets
#           CERT=server.pfx bench/scripts/profile.sh h2 --transport epoll
# The sample is pinned to CPU 1 and the load to CPU 0, as in the bench; it runs from its Release build
# (dotnet build -c Release samples/WebApp first). h2 needs CERT, a PKCS#12 file without a password for 127.0.0.1.
# perf slows the server a little; compare servers profiled this way with each other, and take rates from bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
load=${1:?usage: profile.sh h2c|h2|h1|h1-json [sample args...]}
shift
port=${PORT:-5098}
warm=${WARMUP_SECONDS:-40}
measure=${MEASURE_SECONDS:-10}
for tool in perf taskset curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y linux-perf util-linux curl" >&2; exit 2; }
done
dll=samples/WebApp/bin/Release/net10.0/WebApp.dll
[ -f "$dll" ] || { echo "build the sample first: dotnet build -c Release samples/WebApp" >&2; exit 2; }
scheme=http
server_args=(--urls "http://127.0.0.1:$port")
path=/plaintext
case $load in
  h2c) server_args+=(--Kestrel:EndpointDefaults:Protocols Http2); tool=h2load; curl_flags=(--http2-prior-knowledge) ;;
  h2) [ -f "${CERT:-}" ] || { echo "h2 needs CERT=<pfx file>" >&2; exit 2; }
      scheme=https; server_args=(--urls "https://127.0.0.1:$port" --Kestrel:Certificates:Default:Path "$CERT")
      tool=h2load; curl_flags=(-k --http2) ;;
  h1) tool=wrk; curl_flags=() ;;
  h1-json) tool=wrk; path=/json; curl_flags=() ;;
  *) echo "unknown load '$load': h2c, h2, h1 or h1-json" >&2; exit 2 ;;
esac
command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y nghttp2-client wrk" >&2; exit 2; }
url=$scheme://127.0.0.1:$port$path
run_load() { # seconds
  if [ "$tool" = h2load ]; then
    taskset -c 0 h2load -c 64 -m 10 -D "$1" "$url" | awk '/^finished/ {print $4}'
  else
    taskset -c 0 wrk -t 1 -c 256 -d "$1" "$url" | awk '/^Requests\/sec/ {print $2}'
  fi
}

log=$(mktemp); data=$(mktemp); rate=$(mktemp)
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 taskset -c 1 dotnet "$dll" "${server_args[@]}" \
  --Logging:LogLevel:Default Warning "$@" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log" "$data" "$rate" "/tmp/perf-$server.map"' EXIT
for _ in $(seq 100); do
  curl -sf "${curl_flags[@]}" "$url" >/dev/null && break
  sleep 0.2
done
curl -sf "${curl_flags[@]}" "$url" >/dev/null || { echo "the server did not answer; its log:" >&2; cat "$log" >&2; exit 1; }
echo "warm-up: $warm s"
run_load "$warm" >/dev/null
run_load $((measure + 4)) >"$rate" &
loader=$!
sleep 2
perf record -F 999 -e cpu-clock -g -p "$server" -o "$data" -- sleep "$measure" 2>/dev/null >/dev/null
wait $loader
reqs=$(cat "$rate")
echo "load: $load, $reqs req/s (the whole load run, perf recording for $measure s of it)"
# perf report rounds its sample count ("9K"): count the samples themselves.
samples=$(perf script -i "$data" -F tid 2>/dev/null | wc -l)
perf report -i "$data" --no-children --sort dso,sym --stdio -g none --percent-limit 0 2>/dev/null | awk -v rps="$reqs" -v secs="$measure" -v samples="$samples" '
  /^ +[0-9.]+%/ {
    # "  1.23%  libfoo.so  [.] symbol", the DSO of JIT-compiled code being "[JIT] tid 1234".
    pct = substr($1, 1, length($1) - 1) / 100; dso = $2
    match($0, / \[[k.]\] /); kind = substr($0, RSTART + 1, 3); sym = substr($0, RSTART + RLENGTH)
    if (kind == "[k]") c = "kernel"
    else if (dso ~ /libcrypto|libssl/) c = "TLS (OpenSSL)"
    else if (dso ~ /libcoreclr/) c = "runtime native (GC, stubs)"
    else if (dso ~ /libclrjit/) c = "JIT compiler"
    else if (sym ~ /EpollTransport/) c = "EpollTransport"
    else if (sym ~ /Transport\.Sockets/) c = "Kestrel Sockets transport"
    else if (sym ~ /System\.Net\.Sockets/) c = "System.Net.Sockets"
    else if (sym ~ /System\.IO\.Pipelines/) c = "System.IO.Pipelines"
    else if (sym ~ /Kestrel\.Core/) c = "Kestrel core (HTTP)"
    else if (sym ~ /System\.Net\.Security/) c = "TLS (SslStream)"
    else if (sym ~ /System\.Threading|ThreadPool/) c = "threading, thread pool"
    else if (sym ~ /Microsoft\.AspNetCore|Microsoft\.Extensions/) c = "ASP.NET Core app pipeline"
    else if (sym ~ /System\.Private\.CoreLib/) c = "CoreLib other"
    else c = "other native, stubs, unresolved"
    share[c] += pct
    sym_share[sym] += pct
  }
  END {
    us = samples / 999 / (rps * secs) * 1e6
    printf "CPU per request: %.2f µs (%d samples at 999 Hz over %d s)\n\n", us, samples, secs
    printf "%7s %9s  %s\n", "share", "µs/req", "component"
    for (c in share) printf "%6.1f%% %9.3f  %s\n", share[c] * 100, share[c] * us, c | "sort -rn"
    close("sort -rn")
    printf "\ntop symbols, µs/req:\n"
    for (s in sym_share) printf "%9.3f  %s\n", sym_share[s] * us, substr(s, 1, 160) | "sort -rn | head -20"
  }'
