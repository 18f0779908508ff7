#!/usr/bin/env bash
# Regenerates ports/portsmock, the gomock mocks of the ports, from package
# ports.
#
# mockgen is a tool of the module (the `tool` directive in go.mod), so
# `go tool mockgen` runs the version go.mod pins and every machine produces
# byte-identical output. The command itself is the //go:generate directive
# in ports/portsmock/doc.go. scripts/verify_generated.sh runs this and
# fails on any diff, and CI runs that.
set -euo pipefail
cd "$(dirname "$0")/.."

go generate ./ports/portsmock
