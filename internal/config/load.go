package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problems is every problem found in a configuration, each naming the field
// path (and the line, where the YAML gives one).
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "invalid configuration: " + p[0]
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(p), strings.Join(p, "\n  "))
}

// Load reads, checks and completes the configuration file at path: defaults
// applied, secrets read. Any problem is reported in a Problems error; nothing
// is returned half-loaded.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, filepath.Dir(path))
}

// Parse is Load for a file already read; relative secret files are resolved
// against dir.
func Parse(data []byte, dir string) (*Config, error) {
	cfg := &Config{}
	c, err := Decode(data, dir, cfg)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c.v.check(cfg)
	if err := c.Err(); err != nil {
		return nil, err
	}
	cfg.Warnings = c.v.warnings
	return cfg, nil
}

// walk checks every mapping key of the YAML tree against the fields of t,
// recording the line of every path it passes and an error for each key that
// no field takes. yaml's own KnownFields names only the Go type; an operator
// needs the path in the file.
func walk(n *yaml.Node, t reflect.Type, path string, lines map[string]int, problems *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, t, path, lines, problems)
		}
		return
	case yaml.AliasNode:
		// Not followed: a few anchors can expand to billions of nodes. The
		// strict decode still checks what an alias stands for, and refuses
		// excessive aliasing.
		return
	}
	if path != "" {
		if _, seen := lines[path]; !seen {
			lines[path] = n.Line
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error; the strict decode reports it
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%s (line %d): unknown field %q%s", orRoot(join(path, key.Value)), key.Line, key.Value, suggest(key.Value, fields)))
				continue
			}
			walk(val, ft, join(path, key.Value), lines, problems)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, problems)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walk(n.Content[i+1], t.Elem(), keyPath(path, n.Content[i].Value), lines, problems)
		}
	}
}

// yamlFields maps the YAML keys of struct t (inline fields flattened) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func suggest(key string, fields map[string]reflect.Type) string {
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if strings.ReplaceAll(k, "_", "") == strings.ReplaceAll(key, "_", "") || levenshtein(k, key) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// typeProblems rewrites yaml's type errors ("line 7: cannot unmarshal …") so
// that each names the field path found at that line.
func typeProblems(err error, lines map[string]int) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{yamlMessage(err)}
	}
	byLine := map[int]string{}
	for p, l := range lines {
		if cur, ok := byLine[l]; !ok || len(p) > len(cur) {
			byLine[l] = p
		}
	}
	var out Problems
	for _, msg := range te.Errors {
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			l, _ := strconv.Atoi(m[1])
			rest := msg[len(m[0]):]
			if p, ok := byLine[l]; ok {
				out = append(out, fmt.Sprintf("%s (line %d): %s", p, l, rest))
				continue
			}
		}
		out = append(out, msg)
	}
	return out
}

func yamlMessage(err error) string {
	return "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
}
