package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret file that never ends (/dev/zero) or is far too large to be a
// secret is a problem naming the field, never read into memory.
func TestOversizedSecretFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, maxSecretSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fits"), []byte(strings.Repeat("x", maxSecretSize-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{"/dev/zero", "rabbitmq[0].password_file (line 2): cannot read the secret: /dev/zero is larger than 64 KiB"},
		{"big", "is larger than 64 KiB"},
		{"fits", ""},
	} {
		_, err := Parse([]byte("rabbitmq:\n  - {name: r, urls: [\"http://h:15672\"], username: u, password_file: "+c.file+"}\n"), dir)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.file, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a problem containing %q", c.file, err, c.want)
		}
	}
}
