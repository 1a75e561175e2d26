#!/usr/bin/env bash
# A private MariaDB (ROW binlog, full row metadata) and a Tansu broker on free
# loopback ports, all state under one directory; nothing uses system services.
#
#   scripts/stack.sh start DIR   start both, wait until they answer, write DIR/stack.env
#   scripts/stack.sh stop DIR    stop both and wait for them to exit
#   scripts/stack.sh restart-mysql DIR   stop and start MariaDB on the same port
#   scripts/stack.sh restart-kafka DIR   stop Tansu and start an empty one on the same port
#   scripts/stack.sh stop-mysql DIR      stop MariaDB (start-mysql starts it again, same port and data)
#   scripts/stack.sh pause-kafka DIR     freeze Tansu (SIGSTOP): connections hang, nothing is lost
#   scripts/stack.sh resume-kafka DIR    let it run again
#
# DIR/stack.env holds SLUICE_MYSQL_URL, SLUICE_KAFKA_BROKERS and the pids.
#
# SLUICE_STACK_KAFKA=off: MariaDB alone, e.g. a second site's server beside a
# first stack (own datadir, port and server id) that shares its broker.
#
# SLUICE_STACK_TLS=on: a private CA signs certificates for 127.0.0.1 and for a
# client, under DIR/tls (SLUICE_STACK_TLS_DIR); MariaDB also takes TLS
# connections, and the broker is reached only through a TLS front that it
# advertises (this Tansu build's own --cert does not handshake).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:?usage: stack.sh start|stop|restart-mysql|restart-kafka DIR}"
dir="${2:?usage: stack.sh start|stop|restart-mysql|restart-kafka DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # what, seconds, command...
    local what="$1" secs="$2"; shift 2
    for _ in $(seq 1 $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "stack: $what did not answer within ${secs}s; see its log under $dir" >&2
    return 1
}

# Starts mariadbd on the datadir, port and settings `start` recorded.
start_mysqld() {
    local mysqld; mysqld="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
    local binlog tls; read -r -a binlog <"$dir/mysql/binlog.args"; read -r -a tls <"$dir/mysql/tls.args"
    "$mysqld" --no-defaults --user=root --datadir="$dir/mysql/data" \
        --socket="$dir/mysql/sock" --pid-file="$dir/mysql/pid" \
        --port="$(cat "$dir/mysql/port")" --bind-address=127.0.0.1 --skip-name-resolve \
        "${binlog[@]}" "${tls[@]}" --server-id="$(cat "$dir/mysql/server-id")" \
        --tmpdir="$dir/mysql/tmp" --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 \
        --log-error="$dir/mysql/error.log" >/dev/null 2>&1 &
    echo $! >"$dir/mysql/mysqld.pid"
}

# Stops MariaDB and starts it again on the same port and data (tests of
# reconnection); its new pid goes into stack.env.
stop_mysql() {
    # shellcheck disable=SC1091
    source "$dir/stack.env"
    mariadb-admin --no-defaults --socket="$dir/mysql/sock" -uroot shutdown
    for _ in $(seq 1 100); do kill -0 "$SLUICE_STACK_MYSQL_PID" 2>/dev/null || break; sleep 0.1; done
}

start_mysql() {
    start_mysqld
    sed -i "s/^SLUICE_STACK_MYSQL_PID=.*/SLUICE_STACK_MYSQL_PID=$(cat "$dir/mysql/mysqld.pid")/" "$dir/stack.env"
    wait_for "MariaDB" 60 mariadb-admin --no-defaults --socket="$dir/mysql/sock" -uroot ping
}

# Gives a process that was asked to stop 10 s to exit, then kills it.
await_exit() {
    local pid="$1"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

# Starts Tansu with memory storage on the port `start` recorded.
start_tansu() {
    local tansu="$root/.tools/bin/tansu" kport; kport="$(cat "$dir/kafka.port")"
    "$tansu" broker --listener-url "tcp://127.0.0.1:$kport" \
        --advertised-listener-url "tcp://127.0.0.1:$(cat "$dir/kafka.advertised-port")" \
        --storage-engine memory://tansu/ >>"$dir/tansu.log" 2>&1 &
    echo $! >"$dir/tansu.pid"
}

# Stops Tansu and starts it again, empty, on the same port (benchmarks that
# must not measure one run against what the runs before it stored).
restart_kafka() {
    # shellcheck disable=SC1091
    source "$dir/stack.env"
    kill "$SLUICE_STACK_TANSU_PID" 2>/dev/null || true
    await_exit "$SLUICE_STACK_TANSU_PID"
    start_tansu
    sed -i "s/^SLUICE_STACK_TANSU_PID=.*/SLUICE_STACK_TANSU_PID=$(cat "$dir/tansu.pid")/" "$dir/stack.env"
    wait_for "Tansu" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(cat "$dir/kafka.port")"
}

# A CA, and certificates it signs: the server's (for 127.0.0.1 and
# localhost) and a client's (for accounts that REQUIRE X509).
make_certs() {
    local t="$dir/tls" name
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=sluice test CA" \
        -keyout "$t/ca.key" -out "$t/ca.pem" 2>>"$t/openssl.log"
    for name in server client; do
        openssl req -newkey rsa:2048 -nodes -subj "/CN=sluice $name" \
            -keyout "$t/$name.key" -out "$t/$name.csr" 2>>"$t/openssl.log"
        openssl x509 -req -in "$t/$name.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 7 \
            -extfile <(printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n') \
            -out "$t/$name.pem" 2>>"$t/openssl.log"
    done
}

# The broker's TLS front: TLS on the advertised port, plain TCP to Tansu.
start_tls_front() {
    socat "OPENSSL-LISTEN:$(cat "$dir/kafka.advertised-port"),bind=127.0.0.1,reuseaddr,fork,cert=$dir/tls/server.pem,key=$dir/tls/server.key,verify=0" \
        "TCP:127.0.0.1:$(cat "$dir/kafka.port")" >>"$dir/tls/socat.log" 2>&1 &
    echo $! >"$dir/tls/front.pid"
}

start() {
    local tansu="$root/.tools/bin/tansu"
    [ -x "$tansu" ] || { echo "stack: $tansu missing; run scripts/install.sh" >&2; exit 1; }
    local mport kport; mport="$(free_port)"; kport="$(free_port)"
    local server_id="${SLUICE_SERVER_ID:-$((RANDOM % 1000 + 1))}"
    # SLUICE_STACK_BINLOG=off: a server without binary logging (for the
    # polling source and the start-up check that names it).
    local binlog=(--log-bin="$dir/mysql/binlog" --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL)
    [ "${SLUICE_STACK_BINLOG:-on}" = off ] && binlog=(--skip-log-bin)

    mkdir -p "$dir/mysql/tmp"
    # Seen once in a while when several stacks start at the same moment: the
    # bootstrap fails and succeeds when run again on a clean directory.
    local attempt
    for attempt in 1 2 3; do
        rm -rf "$dir/mysql/data"
        if mariadb-install-db --no-defaults --user=root --datadir="$dir/mysql/data" \
            --tmpdir="$dir/mysql/tmp" --auth-root-authentication-method=normal \
            >"$dir/mysql/install.log" 2>&1; then
            break
        fi
        if [ "$attempt" = 3 ]; then
            echo "stack: mariadb-install-db failed 3 times; its last log:" >&2
            cat "$dir/mysql/install.log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "${binlog[*]}" >"$dir/mysql/binlog.args"
    local tls=() aport="$kport"
    if [ "${SLUICE_STACK_TLS:-off}" = on ]; then
        make_certs
        tls=(--ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server.key")
        aport="$(free_port)"
    fi
    echo "${tls[*]}" >"$dir/mysql/tls.args"
    echo "$server_id" >"$dir/mysql/server-id"
    echo "$mport" >"$dir/mysql/port"
    start_mysqld
    local mpid; mpid="$(cat "$dir/mysql/mysqld.pid")"

    echo "$kport" >"$dir/kafka.port"
    echo "$aport" >"$dir/kafka.advertised-port"
    local kpid="" front="" brokers=""
    if [ "${SLUICE_STACK_KAFKA:-on}" != off ]; then
        start_tansu
        kpid="$(cat "$dir/tansu.pid")"
        brokers="127.0.0.1:$aport"
    fi
    if [ ${#tls[@]} -gt 0 ] && [ -n "$kpid" ]; then
        start_tls_front
        front="$(cat "$dir/tls/front.pid")"
    fi

    cat >"$dir/stack.env" <<ENV
SLUICE_MYSQL_URL=mysql://root@127.0.0.1:$mport/
SLUICE_MYSQL_SOCKET=$dir/mysql/sock
SLUICE_KAFKA_BROKERS=$brokers
SLUICE_STACK_MYSQL_PID=$mpid
SLUICE_STACK_TANSU_PID=$kpid
SLUICE_STACK_FRONT_PID=$front
SLUICE_STACK_TLS_DIR=$([ -n "$front" ] && echo "$dir/tls")
ENV
    wait_for "MariaDB on 127.0.0.1:$mport" 60 mariadb-admin --no-defaults --socket="$dir/mysql/sock" -uroot ping
    echo "MariaDB: mysql://root@127.0.0.1:$mport/ (${binlog[*]}, server-id $server_id)"
    [ -n "$kpid" ] || return 0
    wait_for "Tansu on 127.0.0.1:$kport" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$kport"
    if [ -n "$front" ]; then
        wait_for "the broker's TLS front on 127.0.0.1:$aport" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$aport"
        echo "Kafka:   127.0.0.1:$aport (TLS, CA $dir/tls/ca.pem; Tansu, memory storage)"
    else
        echo "Kafka:   127.0.0.1:$kport (Tansu, memory storage)"
    fi
}

stop() {
    [ -f "$dir/stack.env" ] || return 0
    # shellcheck disable=SC1091
    source "$dir/stack.env"
    mariadb-admin --no-defaults --socket="$dir/mysql/sock" -uroot shutdown >/dev/null 2>&1 \
        || kill "$SLUICE_STACK_MYSQL_PID" 2>/dev/null || true
    # A paused broker acts on no signal but SIGKILL until it runs again.
    kill -CONT ${SLUICE_STACK_TANSU_PID:-} 2>/dev/null || true
    kill ${SLUICE_STACK_TANSU_PID:-} ${SLUICE_STACK_FRONT_PID:-} 2>/dev/null || true
    for pid in "$SLUICE_STACK_MYSQL_PID" ${SLUICE_STACK_TANSU_PID:-} ${SLUICE_STACK_FRONT_PID:-}; do
        await_exit "$pid"
    done
    rm -f "$dir/stack.env"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    restart-mysql) stop_mysql; start_mysql ;;
    stop-mysql) stop_mysql ;;
    start-mysql) start_mysql ;;
    restart-kafka) restart_kafka ;;
    pause-kafka | resume-kafka)
        # shellcheck disable=SC1091
        source "$dir/stack.env"
        kill "-$([ "$cmd" = pause-kafka ] && echo STOP || echo CONT)" "$SLUICE_STACK_TANSU_PID" ;;
    *) echo "usage: stack.sh start|stop|restart-mysql|stop-mysql|start-mysql|restart-kafka|pause-kafka|resume-kafka DIR" >&2; exit 2 ;;
esac
