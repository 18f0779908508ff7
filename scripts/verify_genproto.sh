#!/usr/bin/env bash
# Fails when proto/pulsarpb is not what scripts/genproto.sh generates.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$(mktemp)
cp proto/pulsarpb/pulsar.pb.go "$before"
bash scripts/genproto.sh
if ! diff -u "$before" proto/pulsarpb/pulsar.pb.go; then
  echo "verify_genproto: proto/pulsarpb/pulsar.pb.go is stale; run scripts/genproto.sh and commit" >&2
  exit 1
fi
echo "verify_genproto: generated code is up to date"
