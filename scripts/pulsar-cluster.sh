#!/usr/bin/env bash
# scripts/pulsar-cluster.sh — a real Apache Pulsar cluster on this machine:
# ZooKeeper, one bookie, two brokers and the Pulsar proxy, each a plain JVM
# process (no Docker) on 127.0.0.1, for the cluster suite in interop/.
#
#   bash scripts/pulsar-cluster.sh start           resolve, configure, start all; wait until they answer
#   bash scripts/pulsar-cluster.sh stop            stop every process start launched (by pid); safe twice
#   bash scripts/pulsar-cluster.sh start-broker N  start broker N (1 or 2) again, e.g. after kill -9
#   bash scripts/pulsar-cluster.sh status          say which processes run; print the variables
#   bash scripts/pulsar-cluster.sh env             print the variables the suite reads (export lines)
#
# start resolves org.apache.pulsar:pulsar-broker (PULSAR_VERSION, 4.2.4)
# with Maven from scripts/pulsar/pom.xml into the cache scripts/pulsar.sh
# uses too, and org.apache.pulsar:pulsar-proxy (PULSAR_PROXY_VERSION, 4.0.8:
# the registry serves none of the 4.1 and 4.2 lines; see
# scripts/pulsar/proxy-pom.xml) from scripts/pulsar/proxy-pom.xml into a
# cache of its own (PULSAR_CACHE, default ~/.cache/pulsarconn), writes
# configurations of our own into a fresh run directory and starts, in
# order, each as its own process:
#
#   ZooKeeper  127.0.0.1:2191   metadata and configuration store (ZooKeeperServerMain)
#   (setup)                     cluster "pulsarconn", tenant public, public/default,
#                               BookKeeper's ledger metadata (PulsarClusterMetadataSetup)
#   bookie     127.0.0.1:3191   BookKeeper (org.apache.bookkeeper.server.Main)
#   broker-1   pulsar://127.0.0.1:6660  http://127.0.0.1:8090  (PulsarBrokerStarter)
#   broker-2   pulsar://127.0.0.1:6670  http://127.0.0.1:8091
#   proxy      pulsar://127.0.0.1:6680  http://127.0.0.1:8092  (ProxyServiceStarter)
#
# Separate processes rather than the standalone's embedded ZooKeeper and
# bookie: the standalone keeps its metadata in RocksDB inside its own JVM by default,
# which a second broker cannot share, and a broker killed with kill -9 must
# not take the store and the bookie with it. None of these ports is one
# scripts/pulsar.sh uses (6650, 6651, 8080, 3181), so both can run at once.
#
# The brokers' metadata session timeout is 5000 ms
# (metadataStoreSessionTimeoutMillis; ZooKeeper's tickTime 1000 allows
# 2–20 s): a broker killed with kill -9 loses its bundle ownerships when
# ZooKeeper expires its session, about 5 s later, and the other broker takes
# them at the next lookup. The load manager is the default (modular) one;
# its load shedding and automatic bundle splitting are off, so that topics
# move only when a test unloads a bundle or kills a broker. No
# authentication, no TLS, no functions worker, no transactions.
#
# Everything of a run lives in PULSAR_CLUSTER_RUN_DIR (default
# /tmp/pulsarconn-cluster): NAME.log, NAME.pid and conf/NAME.conf for NAME
# in zookeeper, bookie, broker-1, broker-2, proxy; setup.log, env, data/.
# See docs/realbroker.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

version="${PULSAR_VERSION:-4.2.4}"
proxy_version="${PULSAR_PROXY_VERSION:-4.0.8}"
cache="${PULSAR_CACHE:-$HOME/.cache/pulsarconn}/pulsar-broker-$version"
proxy_cache="${PULSAR_CACHE:-$HOME/.cache/pulsarconn}/pulsar-proxy-$proxy_version"
run="${PULSAR_CLUSTER_RUN_DIR:-/tmp/pulsarconn-cluster}"
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# How long start (and start-broker) waits for each step.
start_timeout="${PULSAR_START_TIMEOUT:-300}"

host=127.0.0.1
cluster=pulsarconn
zk_port=2191
bookie_port=3191
broker_ports=(6660 6670)
broker_http_ports=(8090 8091)
proxy_port=6680
proxy_http_port=8092
session_timeout_ms=5000
zk="zk:$host:$zk_port"
names=(zookeeper bookie broker-1 broker-2 proxy)

say() { printf 'pulsar-cluster.sh: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# shellcheck source=scripts/pulsar/lib.sh
source "$here/pulsar/lib.sh"

configure() {
  mkdir -p "$run/conf" "$run/data"
  cp "$here/pulsar/log4j2.xml" "$run/conf/log4j2.xml"

  cat >"$run/conf/zookeeper.conf" <<EOF
tickTime=1000
initLimit=10
syncLimit=5
dataDir=$run/data/zookeeper
clientPort=$zk_port
clientPortAddress=$host
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
autopurge.purgeInterval=0
EOF

  # The bookie: one, on loopback, its journal and ledgers under the run
  # directory, without fsync (the data lives as long as the run).
  cat >"$run/conf/bookie.conf" <<EOF
bookiePort=$bookie_port
advertisedAddress=$host
listeningInterface=lo
allowLoopback=true
metadataServiceUri=zk+hierarchical://$host:$zk_port/ledgers
zkTimeout=30000
journalDirectories=$run/data/bookie/journal
ledgerDirectories=$run/data/bookie/ledgers
journalSyncData=false
journalMaxSizeMB=64
journalPreAllocSizeMB=4
journalWriteBufferSizeKB=64
logSizeLimit=67108864
skipListSizeLimit=8388608
entryLogFilePreallocationEnabled=false
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.98
httpServerEnabled=false
gcWaitTime=60000
EOF

  local n
  for n in 1 2; do
    cat >"$run/conf/broker-$n.conf" <<EOF
clusterName=$cluster
metadataStoreUrl=$zk
configurationMetadataStoreUrl=$zk
metadataStoreSessionTimeoutMillis=$session_timeout_ms
bindAddress=$host
advertisedAddress=$host
brokerServicePort=${broker_ports[n - 1]}
webServicePort=${broker_http_ports[n - 1]}

managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
defaultNumberOfNamespaceBundles=4

loadBalancerSheddingEnabled=false
loadBalancerAutoBundleSplitEnabled=false
loadBalancerAutoUnloadSplitBundlesEnabled=false

functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
brokerDeleteInactiveTopicsEnabled=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
EOF
  done

  # The proxy finds the brokers through the metadata store (no fixed
  # broker URL), so it follows bundles wherever they go.
  cat >"$run/conf/proxy.conf" <<EOF
clusterName=$cluster
metadataStoreUrl=$zk
configurationMetadataStoreUrl=$zk
bindAddress=$host
advertisedAddress=$host
servicePort=$proxy_port
webServicePort=$proxy_http_port
authenticationEnabled=false
authorizationEnabled=false
# The proxy connects a client only to a broker on an allowed port
# (default 6650 and 6651, the standard ones); ours are on others.
brokerProxyAllowedTargetPorts=${broker_ports[0]},${broker_ports[1]}
EOF
}

# launch NAME HEAP DIRECT CLASS ARGS...: start CLASS as a process group of
# its own (setsid; it outlives this shell, and stop ends it whole) with its
# output in NAME.log and its pid in NAME.pid. The classpath is the
# broker's, or the proxy's for the proxy.
launch() {
  local name=$1 heap=$2 direct=$3 class=$4 lib=$cache/lib
  shift 4
  [[ $name == proxy ]] && lib=$proxy_cache/lib
  setsid "$java_bin" -Xms"$heap" -Xmx"$heap" -XX:MaxDirectMemorySize="$direct" \
    -XX:+UseSerialGC "${jvm_opens[@]}" \
    -Dlog4j.configurationFile="$run/conf/log4j2.xml" \
    -Dpulsar.log.dir="$run" \
    -Dzookeeper.jmx.log4j.disable=true \
    -cp "$lib/*" "$class" "$@" \
    </dev/null >>"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

# fail NAME WHAT: the step failed; show the end of NAME's log, and stop
# what start launched (the logs stay).
fail() {
  say "$2; the end of $run/$1.log:"
  tail -n 40 "$run/$1.log" >&2 || true
  [[ $command == start ]] && stop
  exit 1
}

# wait_for NAME WHAT CMD...: run CMD every half second until it succeeds;
# fail if NAME's process ends or the time runs out.
wait_for() {
  local name=$1 what=$2
  shift 2
  local deadline=$((SECONDS + start_timeout))
  until "$@" >/dev/null 2>&1; do
    pidfile_alive "$run/$name.pid" || fail "$name" "$name exited before $what"
    ((SECONDS < deadline)) || fail "$name" "$name: no $what within ${start_timeout}s"
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

# brokers_listed: the cluster's broker list names both brokers.
brokers_listed() {
  local list
  list=$(curl -fsS "http://$host:${broker_http_ports[0]}/admin/v2/brokers/$cluster") || return 1
  [[ $list == *"$host:${broker_http_ports[0]}"* && $list == *"$host:${broker_http_ports[1]}"* ]]
}

# broker_ready N: broker N says it is ready and answers a LOOKUP on its own port.
broker_ready() {
  local i=$(($1 - 1))
  curl -fsS -o /dev/null "http://$host:${broker_http_ports[i]}/admin/v2/brokers/ready" &&
    "$run/pulsarconn" lookup --url "pulsar://$host:${broker_ports[i]}" --timeout 5s \
      "persistent://public/default/cluster-ready-$1"
}

start_broker() {
  local n=$1
  [[ $n == 1 || $n == 2 ]] || die "start-broker: N is 1 or 2"
  pidfile_alive "$run/broker-$n.pid" && die "broker-$n already runs (pid $(cat "$run/broker-$n.pid"))"
  say "starting broker-$n (log: $run/broker-$n.log)"
  launch "broker-$n" 384m 256m org.apache.pulsar.PulsarBrokerStarter \
    --broker-conf "$run/conf/broker-$n.conf"
}

start() {
  local name
  for name in "${names[@]}"; do
    pidfile_alive "$run/$name.pid" && die "$name already runs (pid $(cat "$run/$name.pid")); stop first"
  done
  local port
  for port in "$zk_port" "$bookie_port" "${broker_ports[@]}" "${broker_http_ports[@]}" "$proxy_port" "$proxy_http_port"; do
    port_open "$port" && die "port $port is in use by another process"
  done
  command -v "$java_bin" >/dev/null || die "java is not on PATH"
  resolve_jars "$cache" pom.xml -Dpulsar.version="$version"
  resolve_jars "$proxy_cache" proxy-pom.xml -Dpulsar.version="$version" -Dpulsar.proxy.version="$proxy_version"
  # Only stale files of a crashed run are left here: start afresh.
  rm -rf "$run"
  mkdir -p "$run"
  configure
  (cd "$repo" && go build -o "$run/pulsarconn" ./cmd/pulsarconn)

  say "starting ZooKeeper on $zk_port"
  launch zookeeper 128m 64m org.apache.zookeeper.server.ZooKeeperServerMain "$run/conf/zookeeper.conf"
  wait_for zookeeper "ZooKeeper port" port_open "$zk_port"

  say "initialising the metadata of cluster $cluster"
  "$java_bin" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${jvm_opens[@]}" \
    -Dlog4j.configurationFile="$run/conf/log4j2.xml" -cp "$cache/lib/*" \
    org.apache.pulsar.PulsarClusterMetadataSetup \
    --cluster "$cluster" \
    --metadata-store "$zk" \
    --configuration-metadata-store "$zk" \
    --web-service-url "http://$host:${broker_http_ports[0]}" \
    --broker-service-url "pulsar://$host:${broker_ports[0]}" \
    </dev/null >>"$run/setup.log" 2>&1 || fail setup "the metadata setup failed"

  say "starting the bookie on $bookie_port"
  launch bookie 256m 256m org.apache.bookkeeper.server.Main --conf "$run/conf/bookie.conf"
  wait_for bookie "bookie port" port_open "$bookie_port"

  start_broker 1
  start_broker 2
  wait_for broker-1 "answer" broker_ready 1
  wait_for broker-2 "answer" broker_ready 2
  wait_for broker-1 "list of both brokers" brokers_listed

  say "starting the proxy on $proxy_port"
  launch proxy 256m 128m org.apache.pulsar.proxy.server.ProxyServiceStarter --config "$run/conf/proxy.conf"
  wait_for proxy "LOOKUP answered" "$run/pulsarconn" lookup --url "pulsar://$host:$proxy_port" \
    --timeout 5s persistent://public/default/cluster-ready-proxy

  write_env
  say "ready after ${SECONDS}s"
  cat "$run/env"
}

write_env() {
  cat >"$run/env" <<EOF
export PULSAR_CLUSTER_BROKERS="pulsar://$host:${broker_ports[0]} pulsar://$host:${broker_ports[1]}"
export PULSAR_CLUSTER_ADMIN_URLS="http://$host:${broker_http_ports[0]} http://$host:${broker_http_ports[1]}"
export PULSAR_CLUSTER_BROKER_PIDS="$run/broker-1.pid $run/broker-2.pid"
export PULSAR_CLUSTER_PROXY_URL="pulsar://$host:$proxy_port"
export PULSAR_CLUSTER_NAME="$cluster"
export PULSAR_CLUSTER_CTL="$here/pulsar-cluster.sh"
export PULSAR_CLUSTER_RUN_DIR="$run"
EOF
}

# stop ends the processes in the reverse order of start: clients of the
# metadata store and the bookie first.
stop() {
  local i
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    stop_pidfile "$run/${names[i]}.pid" 20
  done
}

command=${1:-}
case $command in
start)
  start
  ;;
stop)
  stop
  ;;
start-broker)
  [[ -f $run/conf/broker-1.conf ]] || die "no cluster in $run; use start"
  start_broker "${2:-}"
  wait_for "broker-$2" "answer" broker_ready "$2"
  wait_for "broker-$2" "list of both brokers" brokers_listed
  say "broker-$2 ready after ${SECONDS}s"
  ;;
status)
  up=0
  for name in "${names[@]}"; do
    if pidfile_alive "$run/$name.pid"; then
      say "$name runs (pid $(cat "$run/$name.pid"))"
      up=$((up + 1))
    else
      say "$name does not run"
    fi
  done
  ((up > 0)) || exit 1
  cat "$run/env"
  ;;
env)
  [[ -f $run/env ]] || die "no $run/env; start the cluster first"
  cat "$run/env"
  ;;
*)
  echo "usage: $0 start|stop|start-broker N|status|env" >&2
  exit 2
  ;;
esac
