#!/usr/bin/env bash
# Fails when proto/pulsarpb is not what scripts/genproto.sh generates:
# pulsar.pb.go (protoc-gen-go) and pulsar_vtproto.pb.go
# (protoc-gen-go-vtproto). The directory is compared with a copy taken
# before, and genproto.sh first removes every *.pb.go file there, so a
# changed, added or removed file counts as a diff.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
cp -R proto/pulsarpb "$snapshot/pulsarpb"
bash scripts/genproto.sh
if ! diff -ru "$snapshot/pulsarpb" proto/pulsarpb; then
  echo "verify_genproto: proto/pulsarpb is stale; run scripts/genproto.sh and commit" >&2
  exit 1
fi
echo "verify_genproto: generated code is up to date"
