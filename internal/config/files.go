package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	promconfig "github.com/prometheus/common/config"
)

// The files a configuration names: secrets, TLS certificates and keys. Each
// is checked to be a regular file of a bounded size before it is read, and
// read at load, so that a bad one is refused then, not at the first scrape.

// secret reads a secret from a file (relative to the config file) or an
// environment variable. Error messages name the file or variable, never the value.
func (v *validator) secret(p, fileKey, file, envKey, env string, required bool) promconfig.Secret {
	switch {
	case file != "" && env != "":
		v.addf(join(p, fileKey), "set either %s or %s, not both", fileKey, envKey)
	case file != "":
		if !filepath.IsAbs(file) && v.dir != "" {
			file = filepath.Join(v.dir, file)
		}
		b, err := readSecret(file)
		if err != nil {
			v.addf(join(p, fileKey), "cannot read the secret: %v", err)
			return ""
		}
		return promconfig.Secret(strings.TrimRight(string(b), "\r\n"))
	case env != "":
		s, ok := os.LookupEnv(env)
		if !ok {
			v.addf(join(p, envKey), "environment variable %s is not set", env)
		}
		return promconfig.Secret(s)
	case required:
		v.addf(p, "a username needs %s or %s", fileKey, envKey)
	}
	return ""
}

// maxSecretSize bounds a secret file: a password, token or client secret is
// far smaller, and a file named by mistake (a log, /dev/zero) must not be
// read into memory.
const maxSecretSize = 64 << 10

func readSecret(file string) ([]byte, error) {
	f, err := openRegular(file, maxSecretSize)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretSize {
		return nil, tooLarge(file, maxSecretSize)
	}
	return b, nil
}

// maxTLSFileSize bounds a CA bundle, certificate or key file; the system's
// whole CA bundle is about 200 KiB.
const maxTLSFileSize = 4 << 20

// openRegular opens a file the configuration names, refusing anything but
// a regular file of at most limit bytes: a FIFO would block the load (and
// a reload) until something writes to it, and a device such as /dev/zero
// never ends. O_NONBLOCK keeps the open itself from waiting on a FIFO.
func openRegular(file string, limit int64) (*os.File, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = CheckRegular(file, fi)
	case fi.Size() > limit:
		err = tooLarge(file, limit)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckRegular refuses a file that is not a regular file (a FIFO, a
// device, a directory, a socket), saying what it is: files the exporter and
// the receiver read or append to must not block them or swallow what they
// write.
func CheckRegular(file string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is not a regular file (%s)", file, fileKind(fi.Mode()))
}

func tooLarge(file string, limit int64) error {
	if limit >= 1<<20 {
		return fmt.Errorf("%s is larger than %d MiB", file, limit>>20)
	}
	return fmt.Errorf("%s is larger than %d KiB", file, limit>>10)
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func (v *validator) optionalTLS(p string, t *promconfig.TLSConfig) {
	if t != nil {
		v.tls(p, t)
	}
}

// tls resolves relative file names and builds the TLS configuration once, so
// a missing or bad certificate is refused at load time, not at the first scrape.
func (v *validator) tls(p string, t *promconfig.TLSConfig) {
	if v.dir != "" {
		t.SetDirectory(v.dir)
	}
	if err := t.Validate(); err != nil {
		v.addf(p, "%v", err)
		return
	}
	// prometheus/common reads these files whole, and again for every new
	// connection: check them first, as secrets are.
	bad := false
	for _, f := range []struct{ key, file string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.file == "" {
			continue
		}
		file, err := openRegular(f.file, maxTLSFileSize)
		if err != nil {
			v.addf(join(p, f.key), "%v", err)
			bad = true
			continue
		}
		file.Close()
	}
	if bad {
		return
	}
	if _, err := promconfig.NewTLSConfig(t); err != nil {
		v.addf(p, "%v", err)
	}
}
