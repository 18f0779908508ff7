#!/usr/bin/env bash
# Fails when any generated code is not what its generator produces:
#
#   proto/pulsarpb   scripts/genproto.sh   pulsar.pb.go and pulsar_vtproto.pb.go
#                                          (checked by verify_genproto.sh)
#   ports/portsmock  scripts/genmocks.sh
#
# Each generator runs in place; the directory is compared with a copy
# taken before, so a changed, added or removed file counts as a diff.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/verify_genproto.sh

snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
cp -R ports/portsmock "$snapshot/portsmock"
bash scripts/genmocks.sh
if ! diff -ru "$snapshot/portsmock" ports/portsmock; then
  echo "verify_generated: ports/portsmock is stale; run scripts/genmocks.sh and commit" >&2
  exit 1
fi
echo "verify_generated: generated mocks are up to date"
