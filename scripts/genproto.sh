#!/usr/bin/env bash
# Regenerates proto/pulsarpb from proto/pulsar.proto:
#
#   pulsar.pb.go          protoc-gen-go: the message types, the descriptors
#                         and the reflection-driven marshalling of
#                         google.golang.org/protobuf
#   pulsar_vtproto.pb.go  protoc-gen-go-vtproto (planetscale/vtprotobuf):
#                         generated SizeVT and MarshalToSizedBufferVT
#                         methods on the same types, with which proto/frame
#                         encodes (4-5x faster than proto.Marshal)
#
# Both generators are pinned so that every machine produces byte-identical
# output: protoc-gen-go by PROTOC_GEN_GO_VERSION below, protoc-gen-go-vtproto
# by go.mod, where it is a `tool` of the module (built here from the
# version go.mod requires). protoc itself is Debian's protobuf-compiler.
# scripts/verify_genproto.sh runs this and fails on any diff, and CI runs
# that.
#
# vtprotobuf's features: marshal+size only.
#
# Not "unmarshal": UnmarshalVT was measured in proto/frame's Parse and
# gained nothing significant (SEND_RECEIPT 641 -> 588 ns, p=0.3; most of
# Parse is allocating the messages), while it decides some malformed input
# otherwise than proto.Unmarshal and has no nesting limit (a 5 MiB frame
# of nested MessageIdData took 512 MiB of goroutine stack): guarding it
# cost what it saved. Decoding stays with proto.Unmarshal, but for the two
# hottest answers in their plain shape, which proto/frame/hot.go decodes
# by hand into one allocation (the allocations were the cost).
#
# Not "pool": pooled messages must go back to the pool exactly when
# nothing refers to them any more, and no decoded message has such a local
# owner here. Parse hands its BaseCommand to the client's core, which
# passes it on to users' Handlers (Push.Command) and returns it from
# Request. Not "clone" or "equal" either: nothing on a hot path clones or
# compares messages.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
VTPROTO_FEATURES=marshal+size

if ! command -v protoc >/dev/null 2>&1; then
  echo "genproto: protoc not found; install Debian's protobuf-compiler" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin"
gen="$bin/protoc-gen-go"
if ! "$gen" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_VERSION}"; then
  GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi

# protoc runs plugins by path: build the vtproto tool, at go.mod's version,
# into a scratch directory.
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
vtgen="$tools/protoc-gen-go-vtproto"
go build -o "$vtgen" github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto

# Start from no generated file, so that one the generators no longer write
# (or one added by hand) shows up as a diff.
rm -f proto/pulsarpb/*.pb.go

protoc \
  --plugin=protoc-gen-go="$gen" \
  --plugin=protoc-gen-go-vtproto="$vtgen" \
  --proto_path=proto \
  --go_out=. \
  --go_opt=module=github.com/pulsarconn/pulsarconn \
  --go-vtproto_out=. \
  --go-vtproto_opt=module=github.com/pulsarconn/pulsarconn,features="${VTPROTO_FEATURES}" \
  proto/pulsar.proto

# protoc's version goes into the headers; strip it so that a different
# Debian point release of protoc does not count as a diff.
sed -i '/^\/\/ \tprotoc  /d' proto/pulsarpb/*.pb.go
