package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// The rule
// ---------------------------------------------------------------------------

// layer is the part of the module a package belongs to.
type layer int

const (
	layerExternal   layer = iota // not in this module
	layerRoot                    // the root package: public API and driver
	layerCore                    // core/...
	layerPorts                   // ports/...
	layerAdapter                 // adapters/...
	layerPulsartest              // pulsartest/...
	layerCmd                     // cmd/...
	layerProto                   // proto/...
	layerOther                   // anything else in the module
)

var layerNames = map[layer]string{
	layerRoot:       "the root package",
	layerCore:       "core",
	layerPorts:      "ports",
	layerAdapter:    "adapters",
	layerPulsartest: "pulsartest",
	layerCmd:        "cmd",
	layerProto:      "proto",
	layerOther:      "other packages",
}

// under reports whether path is dir or below dir.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// layerOf places an import path in a layer of module.
func layerOf(module, path string) layer {
	if path == module {
		return layerRoot
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return layerExternal
	}
	for _, l := range []struct {
		dir   string
		layer layer
	}{
		{"core", layerCore},
		{"ports", layerPorts},
		{"adapters", layerAdapter},
		{"pulsartest", layerPulsartest},
		{"cmd", layerCmd},
		{"proto", layerProto},
	} {
		if under(rel, l.dir) {
			return l.layer
		}
	}
	return layerOther
}

// adapterFamily is the adapter a package of adapters/... belongs to:
// adapters/auth/token and adapters/auth/internal/x are both "adapters/auth".
func adapterFamily(module, path string) string {
	rel := strings.TrimPrefix(path, module+"/")
	parts := strings.SplitN(rel, "/", 3)
	return strings.Join(parts[:min(len(parts), 2)], "/")
}

// doesIO reports the standard packages through which code reaches the
// network, the file system or the operating system; neither core nor ports
// may import them.
func doesIO(path string) bool {
	return under(path, "net") || under(path, "os") || path == "crypto/tls" || under(path, "syscall")
}

// protobufRuntime reports the packages of the protobuf runtime. The
// generated code of proto/pulsarpb is made of its types, so core may use it
// as part of "proto": messages are built, compared and cloned with it.
// vtprotobuf's packages count too: pulsarpb's generated fast paths
// (pulsar_vtproto.pb.go) import its protohelpers.
func protobufRuntime(path string) bool {
	return under(path, "google.golang.org/protobuf") || under(path, "github.com/planetscale/vtprotobuf")
}

// pkg is one of the module's packages, as the checker sees it.
type pkg struct {
	path string
	// imports are the direct imports of its non-test files, on every
	// platform.
	imports []string
}

// graph is the module's import graph.
type graph struct {
	module string
	pkgs   map[string]*pkg
	// std reports whether an import path is in the standard library.
	std func(string) bool
}

// violation is one import that breaks the rule.
type violation struct {
	pkg, imp string
	// via is the import chain from pkg to imp when imp is not a direct
	// import.
	via  []string
	rule string
}

func (v violation) String() string {
	s := fmt.Sprintf("%s imports %s", v.pkg, v.imp)
	if len(v.via) > 0 {
		s = fmt.Sprintf("%s depends on %s (via %s)", v.pkg, v.imp, strings.Join(v.via, " -> "))
	}
	return s + ": " + v.rule
}

// pathTo finds, breadth first over the module's own packages, an import
// chain from the package from to a package for which bad reports true. It
// returns the chain, from's first import to the bad package, or nil.
func (g graph) pathTo(from string, bad func(string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := g.pkgs[cur]
		if p == nil {
			continue // outside the module: cannot lead back into it
		}
		for _, imp := range p.imports {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if bad(imp) {
				var chain []string
				for at := imp; at != from; at = prev[at] {
					chain = append(chain, at)
				}
				slices.Reverse(chain)
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

// check applies the dependency rule to every package of g.
func check(g graph) []violation {
	var out []violation
	// add keeps one report per package and import: the first rule found.
	add := func(v violation) {
		if !slices.ContainsFunc(out, func(o violation) bool { return o.pkg == v.pkg && o.imp == v.imp }) {
			out = append(out, v)
		}
	}
	flag := func(p *pkg, imp, rule string) {
		add(violation{pkg: p.path, imp: imp, rule: rule})
	}
	// flagReach reports the first package reachable from p that is in one
	// of the forbidden layers, directly or through other packages.
	flagReach := func(p *pkg, rule string, forbidden ...layer) {
		chain := g.pathTo(p.path, func(path string) bool {
			return slices.Contains(forbidden, layerOf(g.module, path))
		})
		if chain == nil {
			return
		}
		v := violation{pkg: p.path, imp: chain[len(chain)-1], rule: rule}
		if len(chain) > 1 {
			v.via = chain[:len(chain)-1]
		}
		add(v)
	}

	paths := make([]string, 0, len(g.pkgs))
	for path := range g.pkgs {
		paths = append(paths, path)
	}
	slices.Sort(paths)

	for _, path := range paths {
		p := g.pkgs[path]
		l := layerOf(g.module, path)
		switch l {
		case layerCore:
			for _, imp := range p.imports {
				switch {
				case doesIO(imp):
					flag(p, imp, "core does no I/O: no net, os, crypto/tls or syscall")
				case g.std(imp), protobufRuntime(imp):
				case layerOf(g.module, imp) != layerExternal:
					// The module's own packages: see flagReach below.
				default:
					flag(p, imp, "core imports only the standard library and proto/...")
				}
			}
			flagReach(p, "core depends only on proto/... (and core/...) within the module",
				layerRoot, layerPorts, layerAdapter, layerPulsartest, layerCmd, layerOther)
		case layerPorts:
			for _, imp := range p.imports {
				switch {
				case doesIO(imp):
					flag(p, imp, "ports imports no net, os, crypto/tls or syscall")
				case g.std(imp), layerOf(g.module, imp) == layerPorts:
				case path == g.module+"/ports/portsmock" && under(imp, "go.uber.org/mock"):
					// The generated mocks of the ports, a test helper,
					// are made of gomock.
				default:
					flag(p, imp, "ports imports only the standard library")
				}
			}
		case layerAdapter:
			flagReach(p, "adapters never depend on core, the root package, pulsartest or cmd",
				layerCore, layerRoot, layerPulsartest, layerCmd)
		case layerPulsartest:
			flagReach(p, "pulsartest shares only proto/ with the client: no core, ports, adapters or root package",
				layerCore, layerPorts, layerAdapter, layerRoot)
		}

		if l == layerRoot || l == layerCmd || under(path, g.module+"/contracttest") || path == g.module+"/internal/testenv" {
			// contracttest/... and internal/testenv are test
			// support: they build the tests' environments out of
			// this repository's adapters (and the suite runs the
			// Broker on adapters/memory's fake clock).
			continue
		}
		for _, imp := range p.imports {
			if layerOf(g.module, imp) != layerAdapter {
				continue
			}
			if l == layerAdapter && adapterFamily(g.module, imp) == adapterFamily(g.module, path) {
				continue // an adapter's own subpackages
			}
			flag(p, imp, "only the root package, cmd/... and tests import adapters")
		}
	}
	return out
}

// timeFuncs are the functions of package time that core must not call:
// core is given now and returns deadlines; the driver owns clocks, timers
// and goroutines.
var timeFuncs = map[string]string{
	"Now":       "reads the wall clock; core takes now as an argument",
	"Since":     "reads the wall clock; core takes now as an argument",
	"Until":     "reads the wall clock; core takes now as an argument",
	"Sleep":     "blocks; core never blocks",
	"After":     "starts a timer; core returns a deadline for the driver to arm",
	"AfterFunc": "starts a timer; core returns a deadline for the driver to arm",
	"NewTimer":  "starts a timer; core returns a deadline for the driver to arm",
	"NewTicker": "starts a timer; core returns a deadline for the driver to arm",
	"Tick":      "starts a timer; core returns a deadline for the driver to arm",
}

// clockUses lists the places in file where core's code would read the
// clock, arm a timer or start a goroutine.
func clockUses(fset *token.FileSet, file *ast.File) []string {
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fset.Position(n.Pos()).String()+": "+fmt.Sprintf(format, args...))
	}
	// The name package time has in this file, if it is imported.
	timeName := ""
	for _, spec := range file.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil || path != "time" {
			continue
		}
		switch {
		case spec.Name == nil:
			timeName = "time"
		case spec.Name.Name == ".":
			report(spec, "dot import of time hides calls of time.Now")
		case spec.Name.Name != "_":
			timeName = spec.Name.Name
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n, "go statement: core starts no goroutines; the driver owns them")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok || timeName == "" || id.Name != timeName {
				break
			}
			if why, bad := timeFuncs[n.Sel.Name]; bad {
				report(n, "time.%s %s", n.Sel.Name, why)
			}
		}
		return true
	})
	return out
}

// ---------------------------------------------------------------------------
// Loading the module
// ---------------------------------------------------------------------------

// listedPackage is the part of `go list -json` output the check reads.
type listedPackage struct {
	ImportPath     string
	Name           string
	Dir            string
	Standard       bool
	DepOnly        bool
	Imports        []string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string
	Error          *struct{ Err string }
}

// module is the loaded module: its import graph and, for the clock check,
// the non-test source files of each of its packages.
type module struct {
	graph
	files map[string][]string // import path -> absolute file names
	// problems are packages or files that did not load completely: the
	// check runs on what loaded, and the test logs these.
	problems []string
}

func runGo(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the dependency check needs the go command: %v", err)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// buildExcluded reports whether a file is excluded from every build by a
// //go:build constraint naming the tag "ignore" (the convention for
// generator programs kept next to a package).
func buildExcluded(file *ast.File) bool {
	for _, group := range file.Comments {
		if group.Pos() > file.Package {
			break
		}
		for _, c := range group.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			return mentionsTag(expr, "ignore")
		}
	}
	return false
}

func mentionsTag(e constraint.Expr, tag string) bool {
	switch e := e.(type) {
	case *constraint.TagExpr:
		return e.Tag == tag
	case *constraint.NotExpr:
		return mentionsTag(e.X, tag)
	case *constraint.AndExpr:
		return mentionsTag(e.X, tag) || mentionsTag(e.Y, tag)
	case *constraint.OrExpr:
		return mentionsTag(e.X, tag) || mentionsTag(e.Y, tag)
	}
	return false
}

// loadModule lists the module that holds the current directory.
func loadModule(t *testing.T) *module {
	t.Helper()
	gomod := strings.TrimSpace(string(runGo(t, ".", "env", "GOMOD")))
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatalf("not inside a module (GOMOD=%q)", gomod)
	}
	root := filepath.Dir(gomod)
	modPath := strings.TrimSpace(string(runGo(t, root, "list", "-m")))

	out := runGo(t, root, "list", "-e", "-deps",
		"-json=ImportPath,Name,Dir,Standard,DepOnly,Imports,GoFiles,CgoFiles,IgnoredGoFiles,Error",
		"./...")
	var listed []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var lp listedPackage
		if err := dec.Decode(&lp); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		listed = append(listed, lp)
	}
	return buildModule(t, modPath, listed)
}

func buildModule(t *testing.T, modPath string, listed []listedPackage) *module {
	t.Helper()
	standard := map[string]bool{}
	for _, lp := range listed {
		if lp.Standard {
			standard[lp.ImportPath] = true
		}
	}
	m := &module{
		graph: graph{
			module: modPath,
			pkgs:   map[string]*pkg{},
			std: func(path string) bool {
				if standard[path] {
					return true
				}
				// Imports seen only in files for other platforms were not
				// loaded; the go command's own test: no dot in the first
				// element. "C" is cgo, not a package of the library.
				first, _, _ := strings.Cut(path, "/")
				return path != "C" && !strings.Contains(first, ".") && layerOf(modPath, path) == layerExternal
			},
		},
		files: map[string][]string{},
	}
	for _, lp := range listed {
		if lp.DepOnly || layerOf(modPath, lp.ImportPath) == layerExternal {
			continue
		}
		if lp.Error != nil {
			m.problems = append(m.problems, fmt.Sprintf("%s: %s", lp.ImportPath, strings.TrimSpace(lp.Error.Err)))
		}
		p := &pkg{path: lp.ImportPath, imports: slices.Clone(lp.Imports)}
		var files []string
		for _, name := range slices.Concat(lp.GoFiles, lp.CgoFiles) {
			files = append(files, filepath.Join(lp.Dir, name))
		}
		// Files that another platform would build count too.
		fset := token.NewFileSet()
		for _, name := range lp.IgnoredGoFiles {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			full := filepath.Join(lp.Dir, name)
			f, err := parser.ParseFile(fset, full, nil, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				m.problems = append(m.problems, err.Error())
				continue
			}
			if f.Name.Name != lp.Name || buildExcluded(f) {
				continue
			}
			files = append(files, full)
			for _, spec := range f.Imports {
				if path, err := strconv.Unquote(spec.Path.Value); err == nil && !slices.Contains(p.imports, path) {
					p.imports = append(p.imports, path)
				}
			}
		}
		m.pkgs[lp.ImportPath] = p
		m.files[lp.ImportPath] = files
	}
	return m
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

// TestDependencyRule checks the module as it is. A layer that does not
// exist yet has nothing to check, and the test says so in its log; every
// violation found fails it.
func TestDependencyRule(t *testing.T) {
	m := loadModule(t)
	if len(m.pkgs) == 0 {
		t.Fatal("go list found no packages in the module")
	}
	for _, problem := range m.problems {
		t.Logf("did not load completely (checked as far as it loaded): %s", problem)
	}

	count := map[layer][]string{}
	for path := range m.pkgs {
		l := layerOf(m.module, path)
		count[l] = append(count[l], path)
	}
	for _, l := range []layer{layerRoot, layerCore, layerPorts, layerAdapter, layerPulsartest, layerCmd, layerProto} {
		if len(count[l]) == 0 {
			t.Logf("%s: no package yet; its rules apply as soon as one exists", layerNames[l])
			continue
		}
		slices.Sort(count[l])
		t.Logf("%s: checked %s", layerNames[l], strings.Join(count[l], ", "))
	}

	for _, v := range check(m.graph) {
		t.Errorf("dependency rule: %s", v)
	}

	fset := token.NewFileSet()
	for path, files := range m.files {
		if layerOf(m.module, path) != layerCore {
			continue
		}
		for _, name := range files {
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parsing %s for the clock check: %v", name, err)
				continue
			}
			for _, use := range clockUses(fset, f) {
				t.Errorf("core must not read the clock: %s", use)
			}
		}
	}
}

// TestCheckFlagsViolations feeds the checker a made-up module, so that a
// checker that flags nothing cannot pass for a clean module.
func TestCheckFlagsViolations(t *testing.T) {
	const mod = "example.com/m"
	imports := map[string][]string{
		mod:               {"net", mod + "/adapters/tcp", mod + "/core"},
		mod + "/cmd/tool": {"os", mod + "/adapters/memory", mod + "/pulsartest"},
		mod + "/core": {
			"fmt", "time", "slices",
			"net",                      // I/O
			"os/exec",                  // I/O
			"syscall",                  // I/O
			"crypto/tls",               // I/O
			"github.com/some/library",  // not standard
			"C",                        // cgo
			mod + "/ports",             // not proto
			mod + "/proto/frame",       // fine
			mod + "/core/internal/sim", // core's own
			"google.golang.org/protobuf/proto",
		},
		mod + "/core/internal/sim":             {mod + "/helper"}, // reaches helper
		mod + "/ports":                         {"context", "io", "time", "os", mod + "/proto/pulsarpb", "go.uber.org/mock/gomock", "github.com/planetscale/vtprotobuf/protohelpers"},
		mod + "/ports/portsmock":               {"context", mod + "/ports", "go.uber.org/mock/gomock", "github.com/some/library"},
		mod + "/adapters/tcp":                  {"net", "os", mod + "/ports", "golang.org/x/sys/unix"},
		mod + "/adapters/tls":                  {"crypto/tls", mod + "/adapters/tcp", mod + "/core"},
		mod + "/adapters/quic":                 {mod + "/adapters/quic/internal/stream", mod + "/helper"},
		mod + "/adapters/quic/internal/stream": {mod + "/ports"},
		mod + "/adapters/auth/token":           {mod + "/adapters/auth/internal/cred"},
		mod + "/adapters/auth/internal/cred":   {mod + "/ports"},
		mod + "/helper":                        {mod},
		mod + "/pulsartest":                    {"net", "testing", mod + "/proto/frame"},
		mod + "/pulsartest/sub":                {mod + "/adapters/memory"},
		mod + "/proto/frame":                   {mod + "/proto/pulsarpb", mod + "/ports"},
		mod + "/proto/pulsarpb":                {"google.golang.org/protobuf/proto"},
		mod + "/contracttest":                  {"testing", mod + "/ports", mod + "/adapters/memory"}, // test support
		mod + "/internal/lib":                  {mod + "/adapters/memory"},
		mod + "/adapters/memory":               {"net", "os", "syscall", mod + "/ports"},
	}
	g := graph{
		module: mod,
		pkgs:   map[string]*pkg{},
		std: func(path string) bool {
			first, _, _ := strings.Cut(path, "/")
			return path != "C" && !strings.Contains(first, ".")
		},
	}
	for path, imps := range imports {
		g.pkgs[path] = &pkg{path: path, imports: imps}
	}

	var got []string
	for _, v := range check(g) {
		got = append(got, v.pkg+" -> "+v.imp+" via "+strings.Join(v.via, ","))
		t.Log(v)
	}
	want := []string{
		mod + "/core -> net via ",
		mod + "/core -> os/exec via ",
		mod + "/core -> syscall via ",
		mod + "/core -> crypto/tls via ",
		mod + "/core -> github.com/some/library via ",
		mod + "/core -> C via ",
		// Of core's paths to forbidden packages, the shortest is reported.
		mod + "/core -> " + mod + "/ports via ",
		mod + "/core/internal/sim -> " + mod + "/helper via ",
		mod + "/ports -> os via ",
		mod + "/ports -> " + mod + "/proto/pulsarpb via ",
		// Only portsmock may import gomock, and nothing else outside the
		// standard library.
		mod + "/ports -> go.uber.org/mock/gomock via ",
		// The protobuf runtime, vtprotobuf's included, is core's and
		// proto's, not ports'.
		mod + "/ports -> github.com/planetscale/vtprotobuf/protohelpers via ",
		mod + "/ports/portsmock -> github.com/some/library via ",
		mod + "/adapters/tls -> " + mod + "/adapters/tcp via ",
		mod + "/adapters/tls -> " + mod + "/core via ",
		mod + "/adapters/quic -> " + mod + " via " + mod + "/helper",
		mod + "/pulsartest -> " + mod + "/ports via " + mod + "/proto/frame",
		mod + "/pulsartest/sub -> " + mod + "/adapters/memory via ",
		mod + "/internal/lib -> " + mod + "/adapters/memory via ",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations:\ngot\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// The same module without the violations is clean.
	clean := graph{module: mod, pkgs: map[string]*pkg{}, std: g.std}
	for path, imps := range map[string][]string{
		mod:                       {"net", mod + "/adapters/tcp", mod + "/core", mod + "/ports"},
		mod + "/cmd/tool":         {"os", mod + "/adapters/memory", mod + "/pulsartest", mod},
		mod + "/core":             {"fmt", "time", mod + "/proto/frame", "google.golang.org/protobuf/proto", "github.com/planetscale/vtprotobuf/protohelpers"},
		mod + "/ports":            {"context", "io", "time"},
		mod + "/ports/portsmock":  {"context", "reflect", "time", mod + "/ports", "go.uber.org/mock/gomock"},
		mod + "/adapters/tcp":     {"net", "os", mod + "/ports", "golang.org/x/sys/unix", mod + "/proto/frame"},
		mod + "/pulsartest":       {"net", "testing", mod + "/proto/frame"},
		mod + "/proto/frame":      {mod + "/proto/pulsarpb"},
		mod + "/contracttest":     {"testing", mod + "/ports", mod + "/adapters/memory"},
		mod + "/internal/testenv": {"testing", mod + "/adapters/memory", mod + "/pulsartest"},
		mod + "/adapters/auth":    {mod + "/adapters/auth/internal/cred"},
	} {
		clean.pkgs[path] = &pkg{path: path, imports: imps}
	}
	for _, v := range check(clean) {
		t.Errorf("clean module flagged: %s", v)
	}
}

func TestClockUsesFlagsCalls(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the reports, in order
	}{
		{
			name: "time.Now and friends",
			src: `package core
import "time"
func f(now time.Time, d time.Duration) time.Time {
	_ = time.Since(now)
	_ = time.Until(now)
	clock := time.Now
	_ = clock
	return time.Now().Add(d)
}`,
			want: []string{"time.Since", "time.Until", "time.Now", "time.Now"},
		},
		{
			name: "renamed import",
			src: `package core
import clk "time"
func f() { _ = clk.Now() }`,
			want: []string{"time.Now"},
		},
		{
			name: "timers and goroutines",
			src: `package core
import "time"
func f() {
	go func() {}()
	<-time.After(time.Second)
	time.Sleep(1)
	_ = time.NewTimer(1)
}`,
			want: []string{"go statement", "time.After", "time.Sleep", "time.NewTimer"},
		},
		{
			name: "dot import",
			src: `package core
import . "time"
var _ Duration`,
			want: []string{"dot import"},
		},
		{
			name: "types and constants only",
			src: `package core
import "time"
type deadline struct{ at time.Time; d time.Duration }
const tick = 30 * time.Second
func (d deadline) after(now time.Time) bool { return now.After(d.at) }`,
		},
		{
			name: "a variable named time, without the import",
			src: `package core
type clock struct{}
func (clock) Now() int { return 0 }
func f(time clock) int { return time.Now() }`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "core.go", tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := clockUses(fset, f)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d reports, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("report %d = %q, want it to mention %q", i, got[i], w)
				}
			}
		})
	}
}

func TestBuildExcluded(t *testing.T) {
	for src, want := range map[string]bool{
		"//go:build ignore\n\npackage main\n":          true,
		"//go:build ignore && linux\n\npackage main\n": true,
		"//go:build linux && ignore\n\npackage main\n": true,
		"//go:build windows\n\npackage core\n":         false,
		"// Package core.\npackage core\n":             false,
		"package core\n\n//go:build ignore\n":          false,
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if got := buildExcluded(f); got != want {
			t.Errorf("buildExcluded(%q) = %v, want %v", src, got, want)
		}
	}
}

func TestLayerOf(t *testing.T) {
	const mod = "example.com/m"
	for path, want := range map[string]layer{
		mod:                          layerRoot,
		mod + "/core":                layerCore,
		mod + "/core/sim":            layerCore,
		mod + "/corex":               layerOther,
		mod + "/ports":               layerPorts,
		mod + "/adapters/tcp":        layerAdapter,
		mod + "/adapters/auth/jwt":   layerAdapter,
		mod + "/pulsartest":          layerPulsartest,
		mod + "/cmd/pulsarconn":      layerCmd,
		mod + "/proto/frame":         layerProto,
		mod + "/contracttest":        layerOther,
		mod + "/internal/depcheck":   layerOther,
		"example.com/mx":             layerExternal,
		"example.com/m2/core":        layerExternal,
		"net":                        layerExternal,
		"google.golang.org/protobuf": layerExternal,
		"github.com/planetscale/vtprotobuf/protohelpers": layerExternal,
	} {
		if got := layerOf(mod, path); got != want {
			t.Errorf("layerOf(%q) = %v, want %v", path, got, want)
		}
	}
}
