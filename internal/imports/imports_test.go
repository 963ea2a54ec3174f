package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the project's import path.
const module = "github.com/iapha/iap_ha_exporter"

// layers is the one direction imports run, highest first: a package may
// import only packages of a lower layer. Probes fill the model's typed
// Snapshot, so they sit above topology; the metrics, the page and the
// receiver read the model's Observation; only the HTTP side and the binary
// see the collectors.
var layers = [][]string{
	{"cmd/iap_ha_exporter"},
	{"exporter"},
	{"collector", "remediation", "internal/view"},
	{"internal/probe/gateway", "internal/probe/iap", "internal/probe/loadbalancer", "internal/probe/mongodb", "internal/probe/rabbitmq", "internal/probe/redis"},
	{"internal/probe"},
	{"internal/topology"},
	{"internal/config", "internal/namespace"},
}

// standalone are production packages outside the exporter's layers: the
// dashboard generator and the test-only homes of the rules, packaging and
// the Helm chart.
// They may import no layered package.
var standalone = []string{"dashboards", "dashboards/generate", "rules", "packaging", "deploy/helm"}

// pkg is what go list -json says of one package.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func isFixture(r string) bool { return r == "fixtures" || strings.HasPrefix(r, "fixtures/") }

// testOnly are packages that hold tests only, with no production code.
func testOnly(r string) bool { return isFixture(r) || r == "internal/e2e" || r == "internal/imports" }

// check returns every broken rule of the graph:
//   - a layered package imports only lower layers;
//   - nothing under internal/ imports collector, not even in its tests;
//   - no production package depends on fixtures/, even indirectly;
//   - internal/namespace imports nothing of the project;
//   - every production package has a place in layers or standalone.
func check(pkgs []pkg) []string {
	layer := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layer[p] = i
		}
	}
	var bad []string
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		if strings.HasPrefix(r, "internal/") {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if ir, _ := rel(imp); ir == "collector" {
					bad = append(bad, fmt.Sprintf("%s imports collector: under internal/ only the Observation is read (topology)", r))
					break
				}
			}
		}
		if testOnly(r) {
			continue
		}
		for _, d := range p.Deps {
			if dr, ok := rel(d); ok && isFixture(dr) {
				bad = append(bad, fmt.Sprintf("%s depends on %s: no production package uses the test fixtures", r, dr))
			}
		}
		mine, layered := layer[r]
		if !layered && !slices.Contains(standalone, r) {
			bad = append(bad, fmt.Sprintf("%s has no layer: place it in layers or standalone", r))
			continue
		}
		for _, imp := range p.Imports {
			ir, ok := rel(imp)
			if !ok {
				continue
			}
			if r == "internal/namespace" {
				bad = append(bad, fmt.Sprintf("internal/namespace imports %s: it must import nothing of the project", ir))
				continue
			}
			theirs, isLayered := layer[ir]
			switch {
			case !layered && isLayered:
				bad = append(bad, fmt.Sprintf("%s imports %s: the standalone packages stay outside the exporter's layers", r, ir))
			case layered && !isLayered:
				bad = append(bad, fmt.Sprintf("%s imports %s, which has no layer", r, ir))
			case layered && theirs <= mine:
				bad = append(bad, fmt.Sprintf("%s imports %s: imports run one way, %s", r, ir, order()))
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func order() string {
	var parts []string
	for _, l := range layers {
		parts = append(parts, strings.Join(l, ", "))
	}
	return strings.Join(parts, " → ")
}

// listPackages runs go list -json over the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", "./...")
	cmd.Dir = "../.."
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportGraphRunsOneWay(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < len(layers) {
		t.Fatalf("go list found %d packages; the module has more", len(pkgs))
	}
	for _, b := range check(pkgs) {
		t.Error(b)
	}
}

// TestCheckCatchesEachBrokenRule feeds check graphs that break one rule
// each, so that TestImportGraphRunsOneWay cannot pass by checking nothing.
func TestCheckCatchesEachBrokenRule(t *testing.T) {
	m := func(r string) string { return module + "/" + r }
	for _, tc := range []struct {
		name string
		pkg  pkg
		want string
	}{
		{"an internal package imports collector", pkg{ImportPath: m("internal/view"), Imports: []string{m("collector")}}, "internal/view imports collector: under internal/"},
		{"an internal test imports collector", pkg{ImportPath: m("internal/e2e"), XTestImports: []string{m("collector")}}, "internal/e2e imports collector: under internal/"},
		{"the model imports a probe", pkg{ImportPath: m("internal/topology"), Imports: []string{m("internal/probe/redis")}}, "internal/topology imports internal/probe/redis: imports run one way"},
		{"the receiver imports collector", pkg{ImportPath: m("remediation"), Imports: []string{m("collector")}}, "remediation imports collector: imports run one way"},
		{"a production package depends on a fixture", pkg{ImportPath: m("exporter"), Deps: []string{m("fixtures/lab")}}, "exporter depends on fixtures/lab"},
		{"namespace imports the configuration", pkg{ImportPath: m("internal/namespace"), Imports: []string{m("internal/config")}}, "internal/namespace imports internal/config"},
		{"a new package has no layer", pkg{ImportPath: m("internal/newthing")}, "internal/newthing has no layer"},
		{"the dashboards import the collectors", pkg{ImportPath: m("dashboards"), Imports: []string{m("collector")}}, "dashboards imports collector: the standalone packages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check([]pkg{tc.pkg})
			if !slices.ContainsFunc(got, func(f string) bool { return strings.HasPrefix(f, tc.want) }) {
				t.Errorf("check = %q, want a finding starting %q", got, tc.want)
			}
		})
	}
	ok := []pkg{
		{ImportPath: m("internal/probe/redis"), Imports: []string{m("internal/probe"), m("internal/topology"), m("internal/config")}},
		{ImportPath: m("fixtures/bench"), Imports: []string{m("collector"), m("exporter")}},
	}
	if got := check(ok); len(got) != 0 {
		t.Errorf("check of a graph that follows the rules = %q, want nothing", got)
	}
}
