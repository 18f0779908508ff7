# shellcheck shell=bash
# scripts/pulsar/lib.sh — shell functions shared by scripts/pulsar.sh and
# scripts/pulsar-cluster.sh (sourced, not run). The caller defines say and
# die; java_bin is not needed here.

# resolve_jars CACHE POM [MAVEN ARGS...] fills CACHE/lib with the runtime
# jars of POM (a file beside this one) once; a marker file says the copy
# finished, so that an interrupted one is redone.
resolve_jars() {
  local cache=$1 pom=$2
  shift 2
  if [[ -f $cache/.complete ]]; then
    return
  fi
  command -v mvn >/dev/null || die "mvn is not on PATH (apt-get install maven)"
  say "resolving $pom with Maven into $cache"
  rm -rf "$cache"
  mkdir -p "$cache"
  mvn -B -q -f "$(dirname "${BASH_SOURCE[0]}")/$pom" "$@" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$cache/lib"
  touch "$cache/.complete"
}

# jvm_opens: the --add-opens that let Pulsar's servers read JVM and
# container metrics and use Netty's direct buffers, as Pulsar's own
# launcher allows.
# shellcheck disable=SC2034 # used by the scripts that source this file
jvm_opens=(
  --add-opens java.base/jdk.internal.platform=ALL-UNNAMED
  --add-opens java.management/sun.management=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
)

# pidfile_alive FILE: whether FILE names a live process (not a zombie
# waiting to be reaped, as one killed a moment ago may be).
pidfile_alive() {
  local state
  [[ -f $1 ]] && state=$(ps -o stat= -p "$(cat "$1")") && [[ $state != Z* ]]
}

# stop_pidfile FILE [GRACE]: end the process group FILE names (each server
# is started with setsid, so its pid is its group's): TERM, then KILL after
# GRACE seconds (default 30); then remove FILE. Nothing happens without FILE.
stop_pidfile() {
  local file=$1 grace=${2:-30} pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $(basename "$file" .pid) (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < grace * 2; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid still runs after ${grace}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}
