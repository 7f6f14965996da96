#!/usr/bin/env bash
# Remakes docs/screenshot.png: builds the sample, starts it on the epoll transport with AMPED static files on a
# free port, loads its home page in headless Chromium, checks in the server's log that every request the browser
# made was answered 200, and stops the server.
#
#   docs/screenshot.sh [OUTPUT.png]
#
# Needs the .NET 10 SDK and Chromium (Debian: apt-get install chromium; another binary: CHROMIUM=...). When
# pngquant is installed the PNG is quantized to keep it small. The build goes to its own artifacts folder
# (ARTIFACTS, default: a temporary folder), so it does not touch the repository's bin/ and obj/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
output=$(realpath -m "${1:-$repo/docs/screenshot.png}")
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [[ -z $chromium ]]; then
  echo "screenshot.sh: Chromium not found; install it or set CHROMIUM." >&2
  exit 1
fi

work=$(mktemp -d)
artifacts=${ARTIFACTS:-$work/artifacts}
log=$work/server.log
server=

stop_server() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
    kill "$server"
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$server" 2>/dev/null && kill -9 "$server"
    wait "$server" 2>/dev/null || true
  fi
  server=
}
trap 'stop_server; rm -rf "$work"' EXIT

timeout 600 dotnet build "$repo/samples/WebApp/WebApp.csproj" -c Release --artifacts-path "$artifacts" -nologo -v:q
dll=$(find "$artifacts/bin/WebApp" -name WebApp.dll -path '*release*' | head -n 1)

# Port 0: the kernel picks a free port, and the app logs the one it got ("Now listening on: ...").
# Hosting.Diagnostics at Information logs one "Request finished ... - <status>" line per request.
dotnet "$dll" --transport epoll --static amped --urls http://127.0.0.1:0 \
  --Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=Information >"$log" 2>&1 &
server=$!

url=
for _ in $(seq 150); do
  url=$(grep -o 'Now listening on: http://[0-9.:]*' "$log" | head -n 1 | sed 's/^Now listening on: //') || true
  [[ -n $url ]] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
if [[ -z $url ]]; then
  echo "screenshot.sh: the sample did not start:" >&2
  cat "$log" >&2
  exit 1
fi

# The virtual-time budget lets the page's script finish its fetches before the picture is taken.
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
  --window-size=1280,900 --virtual-time-budget=3000 --screenshot="$output" "$url/" 2>"$work/chromium.log" \
  || { cat "$work/chromium.log" >&2; exit 1; }

sleep 0.5
stop_server

if command -v pngquant >/dev/null; then
  pngquant --quality=80-98 --speed 1 --strip --skip-if-larger --force --output "$output" "$output" || true
fi

finished=$(grep -o 'Request finished .*' "$log" || true)
echo "$finished"
if [[ -z $finished ]]; then
  echo "screenshot.sh: the server logged no request." >&2
  exit 1
fi
if grep -v -E ' - 200 ' <<<"$finished" >&2; then
  echo "screenshot.sh: the requests above were not answered 200." >&2
  exit 1
fi
echo "$output: $(stat -c %s "$output") bytes"
