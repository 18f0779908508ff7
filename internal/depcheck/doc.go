// Package depcheck enforces the dependency rule of the layers (docs/architecture.md): it
// holds no code, only a test that loads the module's packages with go list
// and fails on every import that crosses a layer boundary the wrong way.
//
// The rule, as checked:
//
//   - core imports only the standard library, proto/... (with the protobuf
//     runtime its generated code needs: google.golang.org/protobuf and
//     vtprotobuf's helpers) and its own subpackages; none of
//     net, net/*, os, os/*, crypto/tls or syscall; and its non-test files
//     call neither time.Now nor any other wall-clock or timer function of
//     package time, and start no goroutines.
//   - ports imports only the standard library, and none of net, os or
//     crypto/tls; ports/portsmock, the generated mocks of the ports for
//     tests, may import go.uber.org/mock as well.
//   - adapters/... never depend, even indirectly, on core, the root
//     package, pulsartest or cmd/....
//   - Only the root package and cmd/... import adapters/... (an adapter may
//     import its own subpackages); test files may import anything, and
//     so may the test-support packages contracttest/... and
//     internal/testenv.
//   - pulsartest never depends, even indirectly, on core, ports,
//     adapters/... or the root package: it shares only proto/ with the
//     client.
//
// The rule applies to the code that ships, that is to non-test files, on
// every platform: files excluded by build constraints on this machine are
// parsed too.
package depcheck
