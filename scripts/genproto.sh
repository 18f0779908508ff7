#!/usr/bin/env bash
# Regenerates proto/pulsarpb from proto/pulsar.proto.
#
# The generator is pinned (PROTOC_GEN_GO_VERSION) so that every machine
# produces byte-identical output; protoc itself is Debian's
# protobuf-compiler. scripts/verify_genproto.sh runs this and fails on any
# diff, and CI runs that.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12

if ! command -v protoc >/dev/null 2>&1; then
  echo "genproto: protoc not found; install Debian's protobuf-compiler" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin"
gen="$bin/protoc-gen-go"
if ! "$gen" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_VERSION}"; then
  GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi

protoc \
  --plugin=protoc-gen-go="$gen" \
  --proto_path=proto \
  --go_out=. \
  --go_opt=module=github.com/pulsarconn/pulsarconn \
  proto/pulsar.proto

# protoc's version goes into the header; strip it so that a different
# Debian point release of protoc does not count as a diff.
sed -i '/^\/\/ \tprotoc  /d' proto/pulsarpb/pulsar.pb.go
