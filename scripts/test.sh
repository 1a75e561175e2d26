#!/usr/bin/env bash
# Runs every check and test: formatting, lints and rustdoc of both
# workspaces, plugin logic natively, then the workspace (unit tests and the
# end-to-end suites, which build the wasm plugins and start their own private
# MariaDB and Tansu through scripts/stack.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install.sh

echo "== formatting, lints, rustdoc"
cargo fmt --all --check
(cd plugins && cargo fmt --all --check)
cargo clippy --workspace --all-targets -- -D warnings
(cd plugins && cargo clippy --workspace --all-targets --target wasm32-wasip2 -- -D warnings)
(cd plugins && cargo clippy --workspace --all-targets -- -D warnings)
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet

echo "== plugin SDK and example plugins, natively"
(cd plugins && cargo test)

echo "== workspace"
cargo test --workspace

echo "== the README's quick start, as a new user types it"
bash scripts/quickstart.sh
