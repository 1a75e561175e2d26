#!/usr/bin/env bash
# Runs the README's quick start exactly as written: the shell block between
# its quickstart markers, from the repository's root, failing on the first
# command that fails. CI runs this, so the steps a new user types keep working.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
steps="$(mktemp)"
trap 'bash scripts/stack.sh stop /tmp/sluice-quickstart >/dev/null 2>&1 || true; rm -rf "$steps" quickstart.toml state' EXIT
awk '/<!-- quickstart:begin -->/ { inside = 1; next } /<!-- quickstart:end -->/ { inside = 0 } inside && !/^```/' README.md >"$steps"
[ -s "$steps" ] || { echo "quickstart: no steps between the README's quickstart markers" >&2; exit 1; }
out="$(bash -euo pipefail "$steps")"
echo "$out"
# What the README says the user sees: the snapshot's row and the inserted
# one, cleaned and masked by the plugin.
echo "$out" | grep -q '"op":"r"' || { echo "quickstart: no snapshot row in the topic" >&2; exit 1; }
echo "$out" | grep -q '"op":"c"' || { echo "quickstart: no inserted row in the topic" >&2; exit 1; }
echo "$out" | grep -q '"email":"ann@example.com"' || { echo "quickstart: the plugin did not clean the email" >&2; exit 1; }
echo "$out" | grep -q '"phone":"\*\*\*\*"' || { echo "quickstart: the plugin did not mask the phone" >&2; exit 1; }
echo "$out" | grep -Eq '^users +running' || { echo "quickstart: sluice status did not show the pipeline running" >&2; exit 1; }
echo "quickstart: ok"
