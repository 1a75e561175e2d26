#!/usr/bin/env bash
# The Sluice demo, end to end on this machine: installs what is missing,
# builds the runtime and the plugins, starts a private MariaDB and Tansu,
# runs the example plugins over sample records, validates the example
# pipeline, and shows a plugin hot reload while records flow.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build: sluice (release) and the wasm plugins"
cargo build --release --quiet -p sluice
(cd plugins && cargo build --release --quiet --target wasm32-wasip2)
sluice="$root/target/release/sluice"
wasm="$root/plugins/target/wasm32-wasip2/release"

step "start a private MariaDB and Tansu broker"
stack="$(mktemp -d -t sluice-demo-XXXX)"
trap 'bash "$root/scripts/stack.sh" stop "$stack/site-b"; bash "$root/scripts/stack.sh" stop "$stack"; rm -rf "$stack"' EXIT
bash scripts/stack.sh start "$stack"
# shellcheck disable=SC1091
source "$stack/stack.env"
mariadb --no-defaults --socket="$SLUICE_MYSQL_SOCKET" -uroot -e \
    "SELECT VERSION() AS server, @@binlog_format AS binlog_format, @@binlog_row_metadata AS row_metadata"

step "clean: trim, lowercase emails, mask phone (last 4), reject rows without a valid email"
"$sluice" plugin test "$wasm/clean.wasm" --config mask=phone --config mask_style=last4 \
    --config on_invalid=reject < examples/records/users.jsonl || echo "(exit $?: one record was rejected, as intended)"

step "enrich: add email_domain and country_name looked up from config"
"$sluice" plugin test "$wasm/enrich.wasm" --config domain_from=email --config lookup_column=country \
    --config lookup_into=country_name --config lookup.DE=Germany --config lookup.US="United States" \
    < examples/records/users.jsonl

step "route: pick the destination from country, fan US out to two topics, drop XX"
"$sluice" plugin test "$wasm/route.wasm" --config column=country --config routes.DE=users.eu \
    --config routes.US=users.us,users.audit --config drop=XX < examples/records/users.jsonl

step "check the example pipeline file (plugins started with their configs)"
SLUICE_MYSQL_PASSWORD=demo "$sluice" check examples/pipeline.toml

step "hot reload: records stream through plugin 'live'; its .wasm is replaced mid-stream"
live="$stack/plugins"
mkdir -p "$live"
cp "$wasm/passthrough.wasm" "$live/live.wasm"
{
    for i in $(seq 1 12); do
        printf '{"op":"insert","database":"shop","table":"users","after":{"id":%d,"email":"  User%d@Example.COM "}}\n' "$i" "$i"
        sleep 0.25
        if [ "$i" = 5 ]; then
            # Editor-style replace: write aside, then rename into place.
            cp "$wasm/clean.wasm" "$live/.live.wasm.tmp" && mv "$live/.live.wasm.tmp" "$live/live.wasm"
            echo "   >>> replaced live.wasm with the clean plugin" >&2
        fi
        if [ "$i" = 9 ]; then
            head -c 4096 "$wasm/route.wasm" > "$live/live.wasm"
            echo "   >>> overwrote live.wasm with a truncated file: refused, clean keeps serving" >&2
        fi
    done
} | "$sluice" plugin watch "$live" live
echo
echo "Records before the first reload passed through unchanged; after it, 'clean' trimmed and"
echo "lowercased them, and the truncated file was refused while clean kept serving."

step "a live pipeline: MariaDB binlog -> clean, enrich, route -> Kafka (Tansu)"
sql() { mariadb --no-defaults --socket="$SLUICE_MYSQL_SOCKET" -uroot "${@:2}" -e "$1"; }
sql "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, email VARCHAR(100),
     phone VARCHAR(30), country CHAR(2), balance DECIMAL(10,2))"
cat > "$stack/pipeline.toml" <<TOML
plugin_dir = "$wasm"
state_dir = "$stack/state"

[[pipeline]]
name = "users"
source = { type = "mysql-binlog", url = "$SLUICE_MYSQL_URL", tables = ["shop.users"], server_id = 4101 }
sink = { type = "kafka", brokers = "$SLUICE_KAFKA_BROKERS" }
dead_letter = { topic = "sluice.dead-letter" }

[[pipeline.plugins]]
name = "clean"
config = { mask = ["phone"], mask_style = "last4", on_invalid = "reject" }

[[pipeline.plugins]]
name = "enrich"
config = { domain_from = "email" }

[[pipeline.plugins]]
name = "route"
config = { column = "country", routes = { DE = "users.eu", US = "users.us" } }
TOML
# Metrics, health and the status page on a free port (9464 by default).
SLUICE_HTTP="127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export SLUICE_HTTP
"$sluice" run "$stack/pipeline.toml" 2> "$stack/run.log" &
run_pid=$!
for _ in $(seq 1 300); do [ -f "$stack/state/users.position.json" ] && break; sleep 0.1; done
sql "INSERT INTO shop.users VALUES (1, ' Ann@Example.COM ', '+49 170 1234567', 'DE', 120.50);
     INSERT INTO shop.users VALUES (2, 'bob@example.org', '+1 555 0100', 'US', 0);
     UPDATE shop.users SET balance = 19.99 WHERE id = 2;
     INSERT INTO shop.users VALUES (3, 'not-an-email', NULL, 'FR', 5);
     DELETE FROM shop.users WHERE id = 1;"
echo "-- users.eu and users.us (Debezium envelopes; phone masked, email_domain added):"
"$sluice" tail --brokers "$SLUICE_KAFKA_BROKERS" users.eu users.us --max 4 --timeout-s 30
echo "-- sluice.dead-letter (the invalid email, with the plugin, version and reason in headers):"
"$sluice" tail --brokers "$SLUICE_KAFKA_BROKERS" sluice.dead-letter --max 1 --timeout-s 30
echo "-- sluice status (the same as http://$SLUICE_HTTP/ in a browser, and Prometheus metrics at /metrics):"
"$sluice" status --url "$SLUICE_HTTP"
kill -INT "$run_pid"; wait "$run_pid" || true
echo "-- stored position: $(cat "$stack/state/users.position.json")"

step "and back: Kafka (users.eu, users.us) -> MySQL, offsets in the same transaction as the rows"
sql "CREATE DATABASE copy; CREATE TABLE copy.users (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(30),
     country CHAR(2), balance DECIMAL(10,2), email_domain VARCHAR(255))"
cat > "$stack/back.toml" <<TOML
plugin_dir = "$wasm"

[[pipeline]]
name = "users-back"
source = { type = "kafka", brokers = "$SLUICE_KAFKA_BROKERS", topics = ["users.eu", "users.us"], group = "demo-back" }
sink = { type = "mysql", url = "$SLUICE_MYSQL_URL", table = "copy.users" }
dead_letter = { topic = "sluice.dead-letter" }
TOML
"$sluice" run "$stack/back.toml" 2> "$stack/back.log" &
back_pid=$!
# users.eu: Ann's insert and delete; users.us: Bob's insert and update.
for _ in $(seq 1 600); do
    applied="$(sql "SELECT COALESCE(SUM(next_offset), 0) FROM sluice.sluice_offsets" -N 2>/dev/null || echo 0)"
    [ "${applied:-0}" -ge 4 ] && break
    sleep 0.1
done
kill -INT "$back_pid"; wait "$back_pid" || true
echo "-- copy.users (Ann inserted then deleted; Bob with his update, phone masked):"
sql "SELECT * FROM copy.users"
echo "-- sluice.sluice_offsets (written with the rows):"
sql "SELECT pipeline, topic, kafka_partition, next_offset FROM sluice.sluice_offsets"

step "bidirectional: a second MariaDB (site B) kept equal with the first (site A) through Kafka"
SLUICE_STACK_KAFKA=off bash scripts/stack.sh start "$stack/site-b" >/dev/null
site_b_url="$(grep '^SLUICE_MYSQL_URL=' "$stack/site-b/stack.env" | cut -d= -f2-)"
site_b_socket="$(grep '^SLUICE_MYSQL_SOCKET=' "$stack/site-b/stack.env" | cut -d= -f2-)"
sql_b() { mariadb --no-defaults --socket="$site_b_socket" -uroot "${@:2}" -e "$1"; }
items="CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40),
       qty INT, updated_at DATETIME(6) NOT NULL)"
sql "$items"; sql_b "$items"
sed -e "s#\${SITE_A_URL}#$SLUICE_MYSQL_URL#; s#\${SITE_B_URL}#$site_b_url#; s#\${KAFKA_BROKERS}#$SLUICE_KAFKA_BROKERS#" \
    -e "s#^plugin_dir = .*#plugin_dir = \"$wasm\"#; s#^state_dir = .*#state_dir = \"$stack/bidi-state\"#" \
    examples/bidirectional.toml > "$stack/bidirectional.toml"
"$sluice" run "$stack/bidirectional.toml" 2> "$stack/bidi.log" &
bidi_pid=$!
for _ in $(seq 1 300); do [ "$(grep -c running "$stack/bidi.log")" -ge 4 ] && break; sleep 0.1; done
bump="GREATEST(NOW(6), updated_at + INTERVAL 1 MICROSECOND)"
sql "INSERT INTO shop.items VALUES (1, 'made at A', 1, NOW(6)), (2, 'made at A', 2, NOW(6))"
sql_b "INSERT INTO shop.items VALUES (3, 'made at B', 3, NOW(6))"
# Each site holds the other's rows once both consumer groups have joined.
until_items() { # sql function, rows, what it must show
    for _ in $(seq 1 600); do
        [ "$("$1" "SELECT COUNT(*) FROM shop.items WHERE $2" -N 2>/dev/null)" = "${3:-1}" ] && return 0
        sleep 0.1
    done
    echo "demo: shop.items never held $2" >&2; return 1
}
until_items sql_b "id IN (1, 2)" 2
until_items sql "id = 3"
echo "-- both sites change item 2 within milliseconds; B's change is the later one, so it wins on both:"
sql "UPDATE shop.items SET qty = 20, name = 'A changed it', updated_at = $bump WHERE id = 2"
sql_b "UPDATE shop.items SET qty = 200, name = 'B changed it', updated_at = $bump WHERE id = 2"
until_items sql "id = 2 AND qty = 200"
until_items sql_b "id = 2 AND qty = 200"
sleep 1
echo "-- site A:"; sql "SELECT id, name, qty FROM shop.items"
echo "-- site B:"; sql_b "SELECT id, name, qty FROM shop.items"
echo "-- sluice verify, from the pipeline file (exit 0: equal):"
"$sluice" verify "$stack/bidirectional.toml" --pipeline a-out
kill -INT "$bidi_pid"; wait "$bidi_pid" || true
echo "-- each change was published once, by the site it was made at; the echoes dropped:"
grep "stopped" "$stack/bidi.log" | sed 's/^.*INFO //'
