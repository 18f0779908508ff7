#!/usr/bin/env bash
# Makes the official clients that interop/officialclients_test.go and
# interop/realpulsar/officialclients_test.go run:
#
#   - interop/java: PulsarInterop on org.apache.pulsar:pulsar-client 4.2.4,
#     built with Maven into interop/java/target (the jar and, in target/lib,
#     the jars it needs, so that the tests run plain `java -cp` offline);
#   - interop/python: a venv in interop/python/.venv with the pulsar-client
#     version that interop/python/requirements.txt pins.
#
# Run it from anywhere, as often as you like: it rebuilds the jar and
# leaves an installed client as it is. As root on Debian it installs what
# is missing (JDK 17, Maven, python3-venv) with apt-get.
#
#   bash interop/setup-clients.sh            # both
#   bash interop/setup-clients.sh java       # or one of them
#   bash interop/setup-clients.sh python
#
# PYTHON names the Python 3 to make the venv with (python3 unless set).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
apt_updated=

say() { echo "setup-clients: $*" >&2; }
die() { say "$*"; exit 1; }

# apt_install installs Debian packages when we are root and have apt-get.
apt_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "missing: $* (install it, or run this as root on Debian)"
    fi
    if [[ -z $apt_updated ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_java() {
    local need=()
    if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
        need+=(openjdk-17-jdk-headless)
    fi
    command -v mvn >/dev/null || need+=(maven)
    if ((${#need[@]})); then
        apt_install "${need[@]}"
    fi
    say "mvn package in $here/java"
    mvn -B -q -Dstyle.color=never -f "$here/java/pom.xml" package
    [[ -f $here/java/target/pulsar-interop.jar ]] || die "mvn package made no $here/java/target/pulsar-interop.jar"
    say "java: $here/java/target/pulsar-interop.jar and $(find "$here/java/target/lib" -name '*.jar' | wc -l) jars in target/lib"
}

setup_python() {
    local venv="$here/python/.venv"
    command -v "$python" >/dev/null || apt_install python3 python3-venv
    # A venv whose interpreter is gone (a Python removed or moved) is made anew.
    if [[ -e $venv ]] && ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        say "removing the broken venv $venv"
        rm -rf "$venv"
    fi
    if [[ ! -e $venv ]]; then
        say "$python -m venv $venv"
        if ! "$python" -m venv "$venv" 2>/dev/null; then
            rm -rf "$venv"
            # Debian's python3 needs python3-venv for ensurepip.
            apt_install python3-venv
            "$python" -m venv "$venv"
        fi
    fi
    say "pip install -r $here/python/requirements.txt"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/python/requirements.txt"
    say "python: $("$venv/bin/python" -c 'import pulsar, sys; print("pulsar-client", pulsar.__version__, "on Python", sys.version.split()[0])')"
}

case "${1:-all}" in
    all) setup_java; setup_python ;;
    java) setup_java ;;
    python) setup_python ;;
    *) die "usage: $0 [all|java|python]" ;;
esac
