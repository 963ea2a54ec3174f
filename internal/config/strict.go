package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Checker lets another YAML format of the binary (the remediation receiver's
// file) be decoded and checked the way this package checks its own: every
// problem collected, each naming the field path and its line.
type Checker struct{ v validator }

// Decode strictly decodes the YAML document data into out, a pointer to a
// struct: an unknown field or a wrong type is a problem naming its path and
// line. Relative secret files are later resolved against dir. The returned
// Checker validates what was decoded; Err reports everything found.
func Decode(data []byte, dir string, out any) (*Checker, error) {
	t := reflect.TypeOf(out)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config.Decode needs a pointer to a struct, not %s", t)
	}
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{yamlMessage(err)}
	}
	c := &Checker{v: validator{lines: map[string]int{}, dir: dir}}
	if root.Kind != 0 {
		walk(&root, t.Elem(), "", c.v.lines, &c.v.problems)
	}
	if len(c.v.problems) > 0 {
		return nil, c.v.problems
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return nil, typeProblems(err, c.v.lines)
	}
	return c, nil
}

// Addf records a problem at a field path ("lease.redis", "scripts.pre_check[0]").
func (c *Checker) Addf(path, format string, args ...any) { c.v.addf(path, format, args...) }

// Secret reads a secret from a file (relative to the file's directory) or an
// environment variable, as password_file and password_env are read.
func (c *Checker) Secret(path, fileKey, file, envKey, env string, required bool) promconfig.Secret {
	return c.v.secret(path, fileKey, file, envKey, env, required)
}

// Credentials reads the password of a username.
func (c *Checker) Credentials(path string, cred *Credentials, required bool) {
	c.v.credentials(path, cred, required)
}

// IAPAuth sets the defaults of an IAP login or OAuth client, checks it and
// reads its secret.
func (c *Checker) IAPAuth(path string, a *IAPAuth) {
	a.setDefaults()
	c.v.iapAuth(path, a)
}

// Duration refuses a negative duration and sets a zero one to def.
func (c *Checker) Duration(path string, d *model.Duration, def time.Duration) {
	setDuration(d, def)
	c.v.duration(path, *d)
}

// Path resolves a file name relative to the directory of the file decoded.
func (c *Checker) Path(name string) string {
	if name == "" || c.v.dir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.v.dir, name)
}

// Err is every problem recorded, or nil.
func (c *Checker) Err() error {
	if len(c.v.problems) == 0 {
		return nil
	}
	return c.v.problems
}
