package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An estate file as small as the format allows: one RabbitMQ cluster.
const smallEstate = "rabbitmq:\n  - {name: r, urls: [\"http://127.0.0.1:1\"]}\n"

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type estateWant struct{ name, config, remediation string }

func checkEstates(t *testing.T, dir string, got []Estate, want []estateWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d estates %v, want %d", len(got), got, len(want))
	}
	rel := func(p string) string {
		if p == "" {
			return ""
		}
		r, _ := filepath.Rel(dir, p)
		return r
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || rel(g.ConfigFile) != w.config || rel(g.RemediationFile) != w.remediation {
			t.Errorf("estate %d = %s %s %s, want %s %s %s", i, g.Name, rel(g.ConfigFile), rel(g.RemediationFile), w.name, w.config, w.remediation)
		}
		if g.Err != nil || g.Config == nil || len(g.Config.RabbitMQ) != 1 {
			t.Errorf("estate %s not loaded: %v", g.Name, g.Err)
		}
	}
}

// A directory of estates: every NAME.yml and NAME.yaml is the estate NAME
// and its NAME.remediation.yml (or .yaml) its remediation file; hidden
// files, other endings and subdirectories are not estates.
func TestEstatesDirectoryOneEstateAFile(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"prod-emea.yml":                 smallEstate,
		"prod-emea.remediation.yml":     "not read here",
		"staging.us_1.yaml":             smallEstate,
		"staging.us_1.remediation.yaml": "not read here",
		"lab.yml":                       smallEstate,
		".hidden.yml":                   "bogus: [",
		".lab.yml.swp":                  "bogus",
		"README.md":                     "estates",
		"lab.yml.bak":                   "bogus: [",
		"old/retired.yml":               "bogus: [",
	})
	got, err := LoadEstates(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkEstates(t, dir, got, []estateWant{
		{"lab", "lab.yml", ""},
		{"prod-emea", "prod-emea.yml", "prod-emea.remediation.yml"},
		{"staging.us_1", "staging.us_1.yaml", "staging.us_1.remediation.yaml"},
	})
}

// A list of estates names each estate and its files, relative to the list.
func TestEstatesListFileNamesEachEstate(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"estates.yml": `estates:
  - name: prod-emea
    config_file: emea/estate.yml
    remediation_file: emea/remediation.yml
  - {name: lab, config_file: lab.yml}
`,
		"emea/estate.yml": smallEstate,
		"lab.yml":         smallEstate,
	})
	got, err := LoadEstates(filepath.Join(dir, "estates.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checkEstates(t, dir, got, []estateWant{
		{"prod-emea", "emea/estate.yml", "emea/remediation.yml"},
		{"lab", "lab.yml", ""},
	})
}

// What is wrong with the listing itself stops the whole load, every
// problem named: a name that is no estate name (it becomes a URL parameter
// and a label), one estate twice, a remediation file without its estate,
// an unknown field of the list.
func TestEstatesListingProblemsNameEach(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		list  string // the list file's name; "" loads the directory
		wants []string
	}{
		{"a name with a space", map[string]string{"prod emea.yml": smallEstate, "ok.yml": smallEstate}, "",
			[]string{`prod emea.yml: "prod emea" is not an estate name`}},
		{"a name starting with a dash", map[string]string{"-x.yml": smallEstate}, "",
			[]string{`-x.yml: "-x" is not an estate name`}},
		{"a name longer than 63", map[string]string{strings.Repeat("a", 64) + ".yml": smallEstate}, "",
			[]string{"is not an estate name"}},
		{"both endings", map[string]string{"a.yml": smallEstate, "a.yaml": smallEstate}, "",
			[]string{"a.yml: estate a is already a.yaml"}},
		{"two remediation files", map[string]string{"a.yml": smallEstate, "a.remediation.yml": "", "a.remediation.yaml": ""}, "",
			[]string{"a.remediation.yml: estate a already has the remediation file a.remediation.yaml"}},
		{"a remediation file alone", map[string]string{"a.yml": smallEstate, "gone.remediation.yml": ""}, "",
			[]string{"gone.remediation.yml: no estate file gone.yml beside it"}},
		{"no estate", map[string]string{"README.md": ""}, "", []string{"holds no estate file"}},
		{"list: a name twice", map[string]string{"l.yml": "estates:\n  - {name: a, config_file: a.yml}\n  - {name: a, config_file: b.yml}\n"}, "l.yml",
			[]string{"estates[1].name (line 3): estate a is already estates[0]"}},
		{"list: a bad name and no file", map[string]string{"l.yml": "estates:\n  - {name: \"a/b\"}\n"}, "l.yml",
			[]string{`estates[0].name (line 2): "a/b" is not an estate name`, "estates[0].config_file: is required"}},
		{"list: one remediation file for two estates", map[string]string{"l.yml": "estates:\n  - {name: a, config_file: x.yml, remediation_file: r.yml}\n  - {name: b, config_file: x.yml, remediation_file: r.yml}\n"}, "l.yml",
			[]string{"estates[1].remediation_file (line 3): is estates[0]'s too"}},
		{"list: unknown field", map[string]string{"l.yml": "estates:\n  - {name: a, config_fle: a.yml}\n"}, "l.yml",
			[]string{`estates[0].config_fle (line 2): unknown field "config_fle" (did you mean "config_file"?)`}},
		{"list: empty", map[string]string{"l.yml": "estates: []\n"}, "l.yml", []string{"estates (line 1): lists no estate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			path := dir
			if c.list != "" {
				path = filepath.Join(dir, c.list)
			}
			got, err := LoadEstates(path)
			if err == nil {
				t.Fatalf("loaded %v, want an error", got)
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// A broken estate file is that estate's error, naming the estate, its file
// and the field; the other estates load, so that a reload can keep the
// broken one as it was and reload the rest.
func TestEstatesBrokenFileNamesTheEstateAndField(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"good.yml":   smallEstate,
		"broken.yml": "iap:\n  servers:\n    - url: http://127.0.0.1:3000\n      rol: standby\n",
	})
	got, err := LoadEstates(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "broken" || got[1].Name != "good" {
		t.Fatalf("estates %v", got)
	}
	if got[1].Err != nil || got[1].Config == nil {
		t.Errorf("the good estate did not load: %v", got[1].Err)
	}
	err = EstatesErr(got)
	for _, w := range []string{"estate broken", "broken.yml", "iap.servers[0].rol (line 4)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	if got[0].Config != nil {
		t.Error("the broken estate came back with a configuration")
	}
}
