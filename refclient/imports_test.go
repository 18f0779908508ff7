package refclient

import (
	"go/build"
	"strings"
	"testing"
)

// TestPublicAPIOnly: refclient is built on pulsarconn's public API only:
// its code imports the root package, proto/... and the standard library
// and protobuf, nothing of core, ports' implementations or internal/.
func TestPublicAPIOnly(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/pulsarconn/pulsarconn"
	for _, imp := range p.Imports {
		switch {
		case imp == mod, strings.HasPrefix(imp, mod+"/proto/"):
		case strings.HasPrefix(imp, mod+"/"):
			t.Errorf("refclient imports %s: only the root package and proto/... are its API", imp)
		}
	}
	if len(p.Imports) == 0 {
		t.Fatal("no imports found: the check reads nothing")
	}
}
