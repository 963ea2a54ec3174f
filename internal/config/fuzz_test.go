package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzSecret is the content of the secret file every fuzzed configuration
// may name: no problem report may repeat it.
const fuzzSecret = "fuzz-secret-Zq8Lw3"

// FuzzParse feeds the loader arbitrary files, seeded with every example and
// every broken configuration of the tests: it must never panic, must return
// either a configuration or a problem, and no problem may quote a secret.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/*.yml")
	bad, _ := filepath.Glob("testdata/bad/*.yml")
	for _, path := range append(seeds, bad...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("rabbitmq:\n  - {name: r, urls: [\"http://h:15672\"], username: u, password_file: secret}\n"))
	f.Add([]byte("iap: {auth: {client_id: c, client_secret_file: secret}, servers: [{name: a, url: \"http://a\"}]}\n"))
	f.Add([]byte("redis:\n  - sentinels: &s [{address: \"a:1\"}]\n  - {name: b, sentinels: *s}\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(fuzzSecret+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, dir)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v: want exactly one", cfg != nil, err)
		}
		if err == nil {
			return
		}
		if err.Error() == "" {
			t.Fatal("a problem without a message")
		}
		if strings.Contains(err.Error(), fuzzSecret) && !strings.Contains(string(data), fuzzSecret) {
			t.Fatalf("the problem report quotes the secret: %v", err)
		}
	})
}

// A few anchors and aliases can stand for billions of nodes ("billion
// laughs"). 3000 groups sharing one list of 3000 Sentinels through an alias
// once cost the loader two minutes and gigabytes; it must be refused at once.
func TestAliasBombRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("redis:\n  - name: g0\n    sentinels: &s\n")
	for range 3000 {
		b.WriteString("      - {address: \"a:1\"}\n")
	}
	for i := 1; i < 3000; i++ {
		b.WriteString("  - {name: g" + string(rune('a'+i%26)) + ", sentinels: *s}\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "")
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("Parse: %v, want the excessive aliasing refused", err)
	}
	// Generous: the refusal takes a fraction of a second, the expansion minutes.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refusing the alias bomb took %s", d)
	}
}

// An alias is still checked, by the strict decode: a typo inside what it
// stands for is a problem.
func TestAliasedContentChecked(t *testing.T) {
	_, err := Parse([]byte("redis:\n  - {name: a, sentinels: &s [{adress: \"a:1\"}]}\n  - {name: b, sentinels: *s}\n"), "")
	if err == nil || !strings.Contains(err.Error(), `unknown field "adress"`) {
		t.Fatalf("Parse: %v, want the typo reported", err)
	}
}
