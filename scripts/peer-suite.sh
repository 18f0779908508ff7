#!/usr/bin/env bash
# scripts/peer-suite.sh — the official Go client's own integration tests
# (apache/pulsar-client-go, package pulsar, PEER_VERSION) against
# "pulsarconn serve".
#
#   bash scripts/peer-suite.sh [--only REGEX] [--timeout DURATION] [--jobs N] [--retries N] [--keep] [--list]
#
# It compiles the package's tests with `go test -c` straight from the Go
# module cache (nothing of that module is copied into this repository),
# builds pulsarconn from this repository, starts "pulsarconn serve" the way
# the client's CI configures its standalone broker (integration-tests/ of
# that module: ports 6650, 6651, 8080 and 8443, its certificates, its token
# secret and htpasswd file, the anonymous role, the namespaces and
# permissions its start script creates, a 1 MiB message limit), then runs
# every test by itself with a timeout each and prints a line per test:
#
#   PASS TestName (1.2s)
#   FAIL TestName (3.4s)       followed by the test's assertion messages
#
# then the tests it does not run and why, and "N passed, M failed". It
# exits 1 if an in-scope test failed.
#
# Out of scope: tests that start Docker containers (testcontainers),
# transaction tests (pulsartest has no transaction coordinator), and the
# files behind the clustered and extensible_load_manager build tags (not
# compiled). Every other test of the package is in scope, the pure unit
# tests included.
#
# The tests dial fixed ports on localhost. When it can (unshare and ip, as
# root or with unprivileged user namespaces), the script runs the server
# and the tests in a private network namespace, so that nothing else on the
# machine (another broker, another run) can collide with those ports;
# otherwise the ports must be free.
#
# The test binary runs in a scratch directory that stands in for the
# module's pulsar/ directory (symbolic links to its files, and
# ../integration-tests linked to the module's), because the tests open
# files by relative paths and some write temporary files to their working
# directory, while the module cache is read-only.
#
# Options:
#   --only REGEX        run only the in-scope tests whose name matches REGEX
#   --timeout DURATION  per-test timeout (go test -timeout syntax), default 120s
#   --jobs N            tests run at the same time, default 1: they share one
#                       server and some measure time, so one at a time is the
#                       dependable setting
#   --retries N         run a failing test again up to N times, default 0; one
#                       that passes then counts as passed and is named as
#                       flaky at the end
#   --keep              keep the scratch directory (logs of every test, the
#                       server's output) and print its path
#   --list              print the in-scope and out-of-scope tests, run nothing
#
# Environment: PEER_VERSION (default v0.19.0), PEER_SUITE_NO_NETNS=1 to use
# the machine's ports even when a private network namespace could be made,
# GOFLAGS and the go command's usual variables.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

version="${PEER_VERSION:-v0.19.0}"
only=""
timeout="120s"
jobs=1
retries=0
keep=0
list=0

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

while (($# > 0)); do
  case $1 in
  --only) only=${2?--only needs a regular expression}; shift 2 ;;
  --only=*) only=${1#*=}; shift ;;
  --timeout) timeout=${2:?--timeout needs a duration}; shift 2 ;;
  --timeout=*) timeout=${1#*=}; shift ;;
  --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
  --jobs=*) jobs=${1#*=}; shift ;;
  --retries) retries=${2:?--retries needs a number}; shift 2 ;;
  --retries=*) retries=${1#*=}; shift ;;
  --keep) keep=1; shift ;;
  --list) list=1; shift ;;
  -h | --help) usage ;;
  *) echo "peer-suite: unknown argument $1" >&2; usage ;;
  esac
done
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
  echo "peer-suite: --jobs wants a positive number, got $jobs" >&2
  exit 2
fi
if ! [[ $retries =~ ^[0-9]+$ ]]; then
  echo "peer-suite: --retries wants a number, got $retries" >&2
  exit 2
fi

say() { printf 'peer-suite: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# ---------------------------------------------------------------------------
# Out of scope: "REGEX  --  reason", the regular expression matched against
# whole test names.
out_of_scope=(
  'TestConsumerKeepReconnectingAndThenCallClose  --  Docker: starts a broker container with testcontainers'
  'TestProducerKeepReconnectingAndThenCallClose  --  Docker: starts a broker container with testcontainers'
  'TestReconnectConsumer  --  Docker: starts a broker container with testcontainers'
  'TestReconnectedBrokerSendPermits  --  Docker: starts a broker container with testcontainers'
  'TestSendAsyncCouldTimeoutWhileReconnecting  --  Docker: starts a broker container with testcontainers'
  'TestTxn_(TCClient|ImplCommitOrAbort|RegisterOpAndEndOp|RegisterTopic|ConsumeAndProduce|AckAndSend|TransactionAbort|AckChunkMessage|ConnReconnect)  --  transactions: pulsartest has no transaction coordinator'
  'TestMessageSingleRouter  --  skipped by the test itself (t.Skip: "too flaky")'
)

# ---------------------------------------------------------------------------
# Phase 1 (here, with the network): the module, the test binary, pulsarconn,
# the tests' working directory. Phase 2 (the same script again, in a private
# network namespace when one can be made): the server and the tests.
# PEER_SUITE_WORK names phase 1's directory to phase 2.
if [[ -z ${PEER_SUITE_WORK:-} ]]; then
  mod="$(go env GOMODCACHE)/github.com/apache/pulsar-client-go@$version"
  if [[ ! -d $mod/pulsar ]]; then
    say "downloading github.com/apache/pulsar-client-go@$version into the module cache"
    (cd "$repo/interop" && go mod download "github.com/apache/pulsar-client-go@$version")
  fi
  [[ -d $mod/pulsar ]] || die "$mod/pulsar is missing"

  work="$(mktemp -d -t peer-suite.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  started=$SECONDS
  say "compiling the tests of github.com/apache/pulsar-client-go@$version/pulsar"
  (cd "$mod" && GOWORK=off go test -c -o "$work/pulsar.test" ./pulsar) ||
    die "the peer's tests do not compile"
  say "building pulsarconn"
  (cd "$repo" && go build -o "$work/pulsarconn" ./cmd/pulsarconn)
  say "built in $((SECONDS - started))s"

  # The tests' working directory: the module's pulsar/ by symbolic links,
  # in a directory of its own so that the files they create stay out of
  # the read-only module cache.
  mkdir -p "$work/peer/pulsar" "$work/logs"
  for f in "$mod"/pulsar/*; do
    ln -s "$f" "$work/peer/pulsar/"
  done
  ln -s "$mod/integration-tests" "$work/peer/integration-tests"

  again=(bash "${BASH_SOURCE[0]}" --timeout "$timeout" --jobs "$jobs" --retries "$retries")
  [[ -n $only ]] && again+=(--only "$only")
  ((keep)) && again+=(--keep)
  ((list)) && again+=(--list)
  export PEER_SUITE_WORK=$work
  trap - EXIT
  if ((!list)) && [[ ${PEER_SUITE_NO_NETNS:-} != 1 ]] &&
    command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    ns=(-n)
    if [[ $(id -u) -ne 0 ]]; then
      ns=(-r -n)
    fi
    if unshare "${ns[@]}" true 2>/dev/null; then
      export PEER_SUITE_NETNS=1
      exec unshare "${ns[@]}" "${again[@]}"
    fi
  fi
  ((list)) || say "no private network namespace (unshare or ip missing, or not permitted): using this machine's ports"
  exec "${again[@]}"
fi

work=$PEER_SUITE_WORK
it="$work/peer/integration-tests"
if [[ ${PEER_SUITE_NETNS:-} == 1 ]]; then
  ip link set lo up
fi
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if ((keep)); then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# The test list: every Test function, minus the out-of-scope ones.
mapfile -t all < <("$work/pulsar.test" -test.list '.*' | grep -E '^Test' | sort)
((${#all[@]} > 0)) || die "the test binary lists no tests"
in_scope=()
skipped=()
for t in "${all[@]}"; do
  reason=""
  for entry in "${out_of_scope[@]}"; do
    if [[ $t =~ ^(${entry%%  --  *})$ ]]; then
      reason=${entry#*  --  }
      break
    fi
  done
  if [[ -n $reason ]]; then
    skipped+=("$t: $reason")
  elif [[ -z $only || $t =~ $only ]]; then
    in_scope+=("$t")
  fi
done

if ((list)); then
  printf 'in scope (%d):\n' "${#in_scope[@]}"
  printf '  %s\n' "${in_scope[@]}"
  printf 'out of scope (%d):\n' "${#skipped[@]}"
  printf '  %s\n' "${skipped[@]}"
  exit 0
fi

# ---------------------------------------------------------------------------
# The server, configured as the client's CI configures its standalone broker
# (integration-tests/conf/standalone.conf and
# scripts/pulsar-test-service-start.sh of that module). Options serve does
# not have (yet) are left out; the tests that need them fail.
help="$("$work/pulsarconn" serve -h 2>&1 || true)"
has() { grep -qE -- "^  -$1( |$)" <<<"$help"; }
args=(--listen pulsar://127.0.0.1:6650)
missing=()
if has advertised-address; then
  args+=(--advertised-address localhost)
else
  missing+=(--advertised-address)
fi
args+=(--tls-listen pulsar+ssl://127.0.0.1:6651 --cert "$it/certs/broker-cert.pem" --key "$it/certs/broker-key.pem")
if has tls-trust-certs; then
  args+=(--tls-trust-certs "$it/certs/cacert.pem")
else
  missing+=(--tls-trust-certs)
fi
if has max-message-size; then
  args+=(--max-message-size 1048576)
else
  missing+=(--max-message-size)
fi
if has token-secret-key; then
  # --lenient-tokens: TestTokenAuth and TestTokenAuthWithSupplier present
  # tokens/token.txt with its final newline, which the broker of the
  # client's CI (Pulsar 4.0.3) accepts and Pulsar 4.2 would refuse.
  args+=(--token-secret-key "$it/tokens/secret.key" --lenient-tokens
    --basic-auth-file "$it/conf/.htpasswd"
    --anonymous-role anonymous
    --super-user localhost --super-user superUser --super-user admin
    --tenant-admin public=anonymous
    --grant public/default=anonymous
    --grant private/auth=token-principal)
else
  missing+=(--token-secret-key)
fi
if has admin; then
  args+=(--admin 127.0.0.1:8080)
else
  missing+=(--admin)
fi
if has admin-tls; then
  args+=(--admin-tls 127.0.0.1:8443)
else
  missing+=(--admin-tls)
fi
if ((${#missing[@]} > 0)); then
  say "this serve lacks ${missing[*]}: the tests that need them will fail"
fi

for port in 6650 6651 8080 8443; do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is taken on 127.0.0.1; the tests need it (stop what listens there)"
  fi
done

"$work/pulsarconn" serve "${args[@]}" >"$work/serve.log" 2>&1 &
server_pid=$!
# serve prints "serving ..." once every listener is open.
for _ in $(seq 600); do
  grep -q '^serving ' "$work/serve.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^serving ' "$work/serve.log"; then
  cat "$work/serve.log" >&2
  die "pulsarconn serve did not start"
fi
say "pulsarconn serve ${args[*]}"

# ---------------------------------------------------------------------------
# run_one TEST: runs one test in the tests' directory; prints its line (and,
# when it failed, the assertion messages) to a result file.
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e9 }'; }
run_one() {
  local t=$1 log="$work/logs/$1.log" res="$work/logs/$1.result"
  local t0 t1 status attempt note=""
  for ((attempt = 0; attempt <= retries; attempt++)); do
    if ((attempt > 0)); then
      mv "$log" "$log.$attempt"
    fi
    status=PASS
    t0=$(date +%s%N)
    # The outer timeout is a backstop for a test binary that does not stop
    # at its own -test.timeout (it panics with the goroutine dump then).
    if ! (cd "$work/peer/pulsar" && exec timeout -k 10 "$(($(dur_secs "$timeout") + 30))" \
      "$work/pulsar.test" -test.run "^${t}\$" -test.timeout "$timeout" -test.v) >"$log" 2>&1; then
      status=FAIL
    elif ! grep -q -- "^--- PASS: $t " "$log"; then
      status=FAIL # ran nothing, or was skipped: not a pass
    fi
    t1=$(date +%s%N)
    [[ $status == PASS ]] && break
  done
  if ((attempt > 0)) && [[ $status == PASS ]]; then
    note=", after $attempt failed attempt(s): FLAKY"
  fi
  {
    echo "$status $t ($(secs $((t1 - t0)))s$note)"
    if [[ $status == FAIL ]]; then
      # The assertion messages, each once, at most 15 lines.
      { grep -E -- '--- FAIL|Error:|Messages:|^panic:|test timed out|^\s+[a-z_]+_test\.go:[0-9]+: ' "$log" || true; } |
        awk '!seen[$0]++ && n++ < 15 { sub(/^ */, "    "); print }'
    fi
  } >"$res"
}

# dur_secs DURATION: whole seconds of a go duration such as 90s, 2m, 1m30s.
dur_secs() {
  awk -v d="$1" 'BEGIN {
    s = 0; n = ""
    for (i = 1; i <= length(d); i++) {
      c = substr(d, i, 1)
      if (c ~ /[0-9.]/) { n = n c; continue }
      if (c == "h") s += n * 3600; else if (c == "m") s += n * 60; else if (c == "s") s += n
      n = ""
    }
    if (n != "") s += n
    printf "%d", s + 0.999
  }'
}

passed=0
failed=0
failures=()
flaky=()
report() {
  local t=$1 res="$work/logs/$1.result"
  cat "$res"
  if [[ $(head -c 4 "$res") == PASS ]]; then
    passed=$((passed + 1))
    if grep -q 'FLAKY)$' "$res"; then
      flaky+=("$t")
    fi
  else
    failed=$((failed + 1))
    failures+=("$t")
  fi
}

say "running ${#in_scope[@]} tests, $jobs at a time, ${timeout} each"
run_started=$SECONDS
if ((jobs == 1)); then
  for t in "${in_scope[@]}"; do
    run_one "$t"
    report "$t"
  done
else
  # A pool of jobs; lines are printed as tests finish.
  declare -A running=()
  next=0
  while ((next < ${#in_scope[@]} || ${#running[@]} > 0)); do
    while ((next < ${#in_scope[@]} && ${#running[@]} < jobs)); do
      t=${in_scope[$next]}
      run_one "$t" &
      running[$!]=$t
      next=$((next + 1))
    done
    wait -n || true
    for pid in "${!running[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        report "${running[$pid]}"
        unset "running[$pid]"
      fi
    done
  done
fi

echo
echo "out of scope (${#skipped[@]}, not run):"
printf '  %s\n' "${skipped[@]}"
rss=$(awk '/^VmRSS/ { print $2 " " $3 }' "/proc/$server_pid/status" 2>/dev/null || echo "?")
echo
echo "server memory at the end: $rss; tests took $((SECONDS - run_started))s"
if ((${#flaky[@]} > 0)); then
  echo "passed only when run again (flaky): ${flaky[*]}"
fi
if ((failed > 0)); then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
