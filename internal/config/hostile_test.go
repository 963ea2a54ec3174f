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

// badAddressesWithPasswords are URLs and addresses carrying the password
// pw-Zq8Lk3 that the configuration refuses: a malformed URL (a bad escape,
// one inside the password, a space, no scheme), a Sentinel address written
// as a Redis URL, and map keys that should have been host:port. The
// problems must name the field without quoting the password.
var badAddressesWithPasswords = map[string]string{
	"bad escape":           "rabbitmq:\n  - {name: r, urls: [\"http://admin:pw-Zq8Lk3@host:15672/%zz\"]}\n",
	"escape in password":   "rabbitmq:\n  - {name: r, urls: [\"http://admin:pw-Zq8Lk3%zz@host:15672\"]}\n",
	"space":                "gateways:\n  - {name: g, url: \"http://admin:pw-Zq8Lk3@ho st:8083\"}\n",
	"no scheme":            "iap:\n  servers:\n    - {name: i, url: \"admin:pw-Zq8Lk3@host:3000\"}\n",
	"path only":            "iap:\n  servers:\n    - {name: i, url: \"/admin:pw-Zq8Lk3@host:3000\"}\n",
	"sentinel redis URL":   "redis:\n  - {name: g, sentinels: [{address: \"redis://:pw-Zq8Lk3@host:26379\"}]}\n",
	"sentinel no port":     "redis:\n  - {name: g, sentinels: [{address: \":pw-Zq8Lk3@host\"}]}\n",
	"sentinel bad port":    "redis:\n  - {name: g, sentinels: [{address: \"u:pw-Zq8Lk3@host:x\"}]}\n",
	"member_sites key":     "mongodb:\n  - {name: rs, uri: \"mongodb://h:27017/?replicaSet=rs\", member_sites: {\"u:pw-Zq8Lk3@h:27017\": nowhere}}\n",
	"rabbit node_sites":    "rabbitmq:\n  - {name: r, urls: [\"http://h:15672\"], node_sites: {\"u:pw-Zq8Lk3@rmq1\": nowhere}}\n",
	"redis node_sites key": "redis:\n  - {name: g, sentinels: [{address: \"h:26379\"}], node_sites: {\"u:pw-Zq8Lk3@h:6379\": nowhere}}\n",
}

func TestProblemsNeverQuoteAPassword(t *testing.T) {
	for name, yaml := range badAddressesWithPasswords {
		_, err := Parse([]byte(yaml), t.TempDir())
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, leak := range []string{"pw-Zq8Lk3", "Zq8"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: the problem quotes the password: %v", name, err)
				break
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://admin:pw@host:1/x":     "http://xxxxx@host:1/x",
		"redis://:pw@host:26379":       "redis://xxxxx@host:26379",
		"admin:pw@host:3000":           "xxxxx@host:3000",
		"http://a:b@c@host/%zz":        "http://xxxxx@host/%zz",
		"http://host:3000/path":        "http://host:3000/path",
		"parse \"http://u:p@h\": oops": "parse \"http://xxxxx@h\": oops",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
