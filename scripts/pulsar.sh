#!/usr/bin/env bash
# scripts/pulsar.sh — a real Apache Pulsar broker on this machine, as a plain
# JVM process (no Docker), for the real-broker tests in interop/.
#
#   bash scripts/pulsar.sh start     resolve, configure and start; wait until it answers
#   bash scripts/pulsar.sh restart   start again on the same data, certificates and secret
#   bash scripts/pulsar.sh stop      stop the process start launched (by its pid)
#   bash scripts/pulsar.sh status    say whether it runs; print its variables if so
#   bash scripts/pulsar.sh env       print the variables the tests read (export lines)
#
# start resolves org.apache.pulsar:pulsar-broker (PULSAR_VERSION, 4.2.4) and
# its runtime dependencies with Maven from scripts/pulsar/pom.xml into a
# cache that later runs reuse (PULSAR_CACHE, default ~/.cache/pulsarconn),
# writes a standalone configuration of our own, makes a CA, a server
# certificate (SAN 127.0.0.1 and localhost) and an HMAC token secret for
# this run, and starts org.apache.pulsar.PulsarStandaloneStarter without the
# functions worker and stream storage, listening on loopback only:
#
#   pulsar://127.0.0.1:6650      binary protocol
#   pulsar+ssl://127.0.0.1:6651  binary protocol over TLS
#   http://127.0.0.1:8080        admin REST API
#
# Token authentication is on (tokens are HS256 JWTs signed with the secret;
# the Go tests mint their own), and so is TLS authentication (client
# certificates signed by the run's CA, role from the CN; the Go tests mint
# them with tls/ca.key), with an anonymous role, so that clients without
# credentials still connect. maxMessageSize is 1 MiB, and the broker
# checks every second for expired credentials, answering them with
# AUTH_CHALLENGE. With PULSAR_BROKER_ENTRY_METADATA=1, start also turns on
# broker entry metadata (interop/cmd/capture records it).
#
# Everything of a run lives in PULSAR_RUN_DIR (default /tmp/pulsarconn-pulsar):
# broker.log, broker.pid, env, the configuration, tls/, the secret, data/.
# See docs/realbroker.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

version="${PULSAR_VERSION:-4.2.4}"
cache="${PULSAR_CACHE:-$HOME/.cache/pulsarconn}/pulsar-broker-$version"
run="${PULSAR_RUN_DIR:-/tmp/pulsarconn-pulsar}"
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# How long start waits for the broker to answer.
start_timeout="${PULSAR_START_TIMEOUT:-300}"

host=127.0.0.1
port=6650
tls_port=6651
http_port=8080
bookie_port=3181

say() { printf 'pulsar.sh: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# shellcheck source=scripts/pulsar/lib.sh
source "$here/pulsar/lib.sh"

pid_alive() { pidfile_alive "$run/broker.pid"; }

# certificates makes a CA, a server certificate it signs for 127.0.0.1 and
# localhost, and a second CA that signed nothing (for the tests that must be
# refused).
certificates() {
  local d=$run/tls
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pulsarconn test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pulsarconn unrelated CA" \
      -keyout wrong-ca.key -out wrong-ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 2 -extfile server.ext -out server.pem 2>/dev/null
    # The broker reads a PKCS#8 key.
    openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pk8.pem
  )
}

configure() {
  mkdir -p "$run/conf" "$run/data"
  cp "$here/pulsar/log4j2.xml" "$run/conf/log4j2.xml"
  # 32 random bytes: the HMAC-SHA256 key of the token provider.
  openssl rand 32 >"$run/token.secret"
  certificates
  # Our own standalone configuration: only what differs from the broker's
  # defaults, keys as the Pulsar documentation names them.
  cat >"$run/conf/standalone.conf" <<EOF
clusterName=standalone
bindAddress=$host
advertisedAddress=$host
brokerServicePort=$port
brokerServicePortTls=$tls_port
webServicePort=$http_port

tlsCertificateFilePath=$run/tls/server.pem
tlsKeyFilePath=$run/tls/server.pk8.pem
tlsTrustCertsFilePath=$run/tls/ca.pem

authenticationEnabled=true
authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls
tokenSecretKey=file://$run/token.secret
anonymousUserRole=anonymous
authorizationEnabled=false
authenticationRefreshCheckSeconds=1

maxMessageSize=1048576

managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
brokerDeleteInactiveTopicsEnabled=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
EOF
  # Broker entry metadata (an index and the broker's timestamp before each
  # entry, delivered to clients that support it) only when asked: with it
  # the broker seeks by its own timestamp rather than publish_time and
  # counts the metadata in storageSize, which the fidelity scenarios
  # seek-time and seek-time-non-durable and TestAdminStatsAgreeWithBroker
  # tell apart from pulsartest (docs/realbroker.md).
  if [[ ${PULSAR_BROKER_ENTRY_METADATA:-0} == 1 ]]; then
    cat >>"$run/conf/standalone.conf" <<EOF

brokerEntryMetadataInterceptors=org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor,org.apache.pulsar.common.intercept.AppendBrokerTimestampMetadataInterceptor
exposingBrokerEntryMetadataToClientEnabled=true
EOF
  fi
}

launch() {
  [[ -d $cache/lib ]] || die "no broker jars in $cache; run start first"
  command -v "$java_bin" >/dev/null || die "java is not on PATH"
  say "starting Apache Pulsar $version standalone (log: $run/broker.log)"
  # setsid: the broker is a process group of its own, which stop kills
  # whole, and it outlives the shell that started it.
  setsid "$java_bin" -Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g \
    "${jvm_opens[@]}" \
    -Dlog4j.configurationFile="$run/conf/log4j2.xml" \
    -Dpulsar.log.dir="$run" \
    -cp "$cache/lib/*" org.apache.pulsar.PulsarStandaloneStarter \
    --config "$run/conf/standalone.conf" \
    --no-functions-worker --no-stream-storage \
    --metadata-dir "$run/data/metadata" \
    --bookkeeper-dir "$run/data/bookkeeper" \
    --bookkeeper-port "$bookie_port" \
    --advertised-address "$host" \
    </dev/null >>"$run/broker.log" 2>&1 &
  echo $! >"$run/broker.pid"
  write_env
  wait_ready
}

write_env() {
  cat >"$run/env" <<EOF
export PULSAR_SERVICE_URL=pulsar://$host:$port
export PULSAR_SERVICE_URL_TLS=pulsar+ssl://$host:$tls_port
export PULSAR_ADMIN_URL=http://$host:$http_port
export PULSAR_TLS_CA=$run/tls/ca.pem
export PULSAR_TLS_WRONG_CA=$run/tls/wrong-ca.pem
export PULSAR_TOKEN_SECRET=$run/token.secret
export PULSAR_PID_FILE=$run/broker.pid
export PULSAR_LOG=$run/broker.log
export PULSAR_CTL=$here/pulsar.sh
export PULSAR_RUN_DIR=$run
EOF
}

# wait_ready waits for the admin health check and then a LOOKUP answered on
# the binary port (by this repository's own command-line tool).
wait_ready() {
  local deadline=$((SECONDS + start_timeout))
  local cli=$run/pulsarconn
  (cd "$repo" && go build -o "$cli" ./cmd/pulsarconn)
  until curl -fsS -o /dev/null "http://$host:$http_port/admin/v2/brokers/health"; do
    pid_alive || {
      tail -n 40 "$run/broker.log" >&2
      die "the broker exited while starting; see $run/broker.log"
    }
    ((SECONDS < deadline)) || die "the broker did not become healthy within ${start_timeout}s; see $run/broker.log"
    sleep 1
  done
  until "$cli" lookup --url "pulsar://$host:$port" --timeout 10s \
    persistent://public/default/pulsar-sh-ready >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the broker did not answer a LOOKUP within ${start_timeout}s"
    sleep 1
  done
  say "ready after ${SECONDS}s"
  cat "$run/env"
}

stop() {
  if ! [[ -f $run/broker.pid ]]; then
    say "not running (no $run/broker.pid)"
    return
  fi
  stop_pidfile "$run/broker.pid" 30
}

case "${1:-}" in
start)
  pid_alive && die "already running (pid $(cat "$run/broker.pid")); stop it first"
  resolve_jars "$cache" pom.xml -Dpulsar.version="$version"
  rm -rf "$run"
  mkdir -p "$run"
  configure
  launch
  ;;
restart)
  [[ -f $run/conf/standalone.conf ]] || die "nothing to restart in $run; use start"
  stop
  launch
  ;;
stop)
  stop
  ;;
status)
  if pid_alive; then
    say "running (pid $(cat "$run/broker.pid"))"
    cat "$run/env"
  else
    say "not running"
    exit 1
  fi
  ;;
env)
  [[ -f $run/env ]] || die "no $run/env; start the broker first"
  cat "$run/env"
  ;;
*)
  echo "usage: $0 start|restart|stop|status|env" >&2
  exit 2
  ;;
esac
