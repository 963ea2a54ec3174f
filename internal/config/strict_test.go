package config

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// other is a format of another part of the binary, decoded with Decode.
type other struct {
	Name    string         `yaml:"name"`
	Timeout model.Duration `yaml:"timeout"`
	Auth    Credentials    `yaml:"auth"`
	Items   []struct {
		Path string `yaml:"path"`
	} `yaml:"items"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error; none: no error
	}{
		{"good", "name: x\ntimeout: 2s\nitems:\n  - path: a\n", nil},
		{"unknown field", "name: x\nitems:\n  - path: a\n    pth: b\n", []string{`items[0].pth (line 4): unknown field "pth" (did you mean "path"?)`}},
		{"wrong type", "name: x\nitems: {path: a}\n", []string{"items (line 2): cannot unmarshal"}},
		{"not YAML", "name: [x\n", []string{"YAML:"}},
		{"secret missing", "auth:\n  username: u\n  password_file: /nonexistent/pw\n", []string{"auth.password_file (line 3): cannot read the secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o other
			c, err := Decode([]byte(tt.yaml), t.TempDir(), &o)
			if err == nil {
				c.Credentials("auth", &o.Auth, false)
				c.Duration("timeout", &o.Timeout, 5*time.Second)
				err = c.Err()
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if o.Name != "x" || time.Duration(o.Timeout) != 2*time.Second || len(o.Items) != 1 {
					t.Errorf("decoded %+v", o)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeNeedsStructPointer(t *testing.T) {
	var m map[string]any
	if _, err := Decode([]byte("a: 1"), "", &m); err == nil {
		t.Error("Decode into a map gave no error")
	}
}
