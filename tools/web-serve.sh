#!/usr/bin/env bash
# Serve the built page (tools/web-build.sh) on 127.0.0.1 only.
#   tools/web-serve.sh [PORT] [DIR]      (default 8000, target/web-page)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${1:-8000}"
dir="${2:-${CARGO_TARGET_DIR:-$root/target}/web-page}"
[ -f "$dir/index.html" ] || { echo "no page in $dir: run tools/web-build.sh first" >&2; exit 1; }
echo "Kantor: http://127.0.0.1:$port/" >&2
exec python3 -m http.server --bind 127.0.0.1 --directory "$dir" "$port"
