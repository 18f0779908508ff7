package pulsartest_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/pulsarconn/pulsarconn"

// TestImportsOnlyProto enforces the dependency rule: pulsartest, and what
// it imports from this module, use the standard library, protobuf and
// proto/ only, never the client's code (core, ports, adapters, the root
// package), so that a bug there cannot hide behind the same bug here.
// Protobuf means its runtime: google.golang.org/protobuf, and vtprotobuf's
// helpers, which proto/pulsarpb's generated fast paths import. The
// testing package is not allowed either, outside _test.go files.
func TestImportsOnlyProto(t *testing.T) {
	allowed := map[string]bool{
		module + "/proto/pulsarpb": true,
		module + "/proto/frame":    true,
	}
	seen := map[string]bool{}
	var check func(dir, path string)
	check = func(dir, path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			switch {
			case imp == "testing":
				t.Errorf("%s imports testing: a program that links pulsartest (pulsarconn serve) would link it too; take the TB interface instead", path)
			case !strings.Contains(strings.Split(imp, "/")[0], "."):
				// standard library
			case strings.HasPrefix(imp, "google.golang.org/protobuf/"),
				strings.HasPrefix(imp, "github.com/planetscale/vtprotobuf/"):
			case allowed[imp]:
				rel := strings.TrimPrefix(imp, module+"/")
				check(filepath.Join("..", filepath.FromSlash(rel)), imp)
			default:
				t.Errorf("%s imports %s: only the standard library, protobuf and proto/ are allowed", path, imp)
			}
		}
	}
	check(".", module+"/pulsartest")
}
