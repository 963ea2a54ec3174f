package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
		{"/dev/zero", "rabbitmq[0].password_file (line 2): cannot read the secret: /dev/zero is not a regular file (a device)"},
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

// Files the configuration names that are not regular files (a FIFO nobody
// writes to, a device, a directory) or too large are problems naming the
// field, refused at once: a FIFO must not block the load, or a reload, and
// prometheus/common would read a CA file whole.
func TestIrregularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "huge.pem"), make([]byte, maxTLSFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := func(file string) string {
		return "rabbitmq:\n  - {name: r, urls: [\"http://h:15672\"], username: u, password_file: " + file + "}\n"
	}
	tlsFile := func(key, file string) string {
		return "rabbitmq:\n  - {name: r, urls: [\"https://h:15671\"], tls_config: {" + key + ": " + file + "}}\n"
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"secret fifo", secret("fifo"), "rabbitmq[0].password_file (line 2): cannot read the secret: " + fifo + " is not a regular file (a named pipe)"},
		{"secret directory", secret("."), "is not a regular file (a directory)"},
		{"ca_file fifo", tlsFile("ca_file", "fifo"), "rabbitmq[0].tls_config.ca_file (line 2): " + fifo + " is not a regular file (a named pipe)"},
		{"ca_file device", tlsFile("ca_file", "/dev/zero"), "rabbitmq[0].tls_config.ca_file (line 2): /dev/zero is not a regular file (a device)"},
		{"ca_file too large", tlsFile("ca_file", "huge.pem"), "huge.pem is larger than 4 MiB"},
		{"cert_file fifo", "rabbitmq:\n  - {name: r, urls: [\"https://h:15671\"], tls_config: {cert_file: fifo, key_file: fifo}}\n", "rabbitmq[0].tls_config.cert_file (line 2): "},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(c.yaml), dir)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%v, want a problem containing %q", err, c.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the configuration is still loading after 30 s: blocked on the file")
			}
		})
	}
}
