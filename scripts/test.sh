#!/usr/bin/env bash
# Runs every test: plugin logic natively, then the workspace (unit tests and
# the end-to-end suites, which build the wasm plugins and start their own
# private MariaDB and Tansu through scripts/stack.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install.sh

host_triple="$(rustc -vV | sed -n 's/^host: //p')"
echo "== plugin SDK and example plugins, natively"
(cd plugins && cargo test --target "$host_triple")

echo "== workspace"
cargo test --workspace
