package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// EstateNameRE is what an estate's name may be: it becomes a URL parameter
// (/probe?estate=NAME), a label value and a file name.
var EstateNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// Estate is one estate of --config.estates, loaded.
type Estate struct {
	Name string
	// ConfigFile is the estate's configuration, in --config.file's format;
	// RemediationFile its remediation receiver's file, "" when it has none.
	ConfigFile      string
	RemediationFile string
	// Config is the loaded configuration, nil when Err is set.
	Config *Config
	// Err is everything wrong with the estate's file, naming the estate,
	// its file and each field.
	Err error
}

// EstateList is the file form of --config.estates: the estates named one
// by one, their files relative to the list's directory.
type EstateList struct {
	Estates []EstateEntry `yaml:"estates"`
}

// EstateEntry is one estate of an EstateList.
type EstateEntry struct {
	Name            string `yaml:"name"`
	ConfigFile      string `yaml:"config_file"`
	RemediationFile string `yaml:"remediation_file"`
}

// LoadEstates reads --config.estates: a directory of estate files or a
// file listing them, then every estate's configuration. The error is about
// the listing itself (a bad or repeated name, an unreadable list): then
// nothing is returned. An estate whose own file is wrong comes back with
// its Err set, so that a reload keeps that estate as it was and reloads
// the others; EstatesErr joins those errors for a start or a check, where
// any is fatal.
func LoadEstates(path string) ([]Estate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var estates []Estate
	if fi.IsDir() {
		estates, err = listEstateDir(path)
	} else {
		estates, err = listEstateFile(path)
	}
	if err != nil {
		return nil, err
	}
	for i := range estates {
		e := &estates[i]
		cfg, err := Load(e.ConfigFile)
		if err != nil {
			e.Err = fmt.Errorf("estate %s (%s): %w", e.Name, e.ConfigFile, err)
			continue
		}
		e.Config = cfg
	}
	return estates, nil
}

// EstatesErr is every estate's error, one estate a paragraph, or nil.
func EstatesErr(estates []Estate) error {
	var errs []error
	for _, e := range estates {
		if e.Err != nil {
			errs = append(errs, e.Err)
		}
	}
	return errors.Join(errs...)
}

// The endings of estate and remediation files in a directory of estates.
var (
	estateExts      = []string{".yml", ".yaml"}
	remediationExts = []string{".remediation.yml", ".remediation.yaml"}
)

// listEstateDir finds the estates of a directory: NAME.yml or NAME.yaml,
// not hidden, not in a subdirectory, with NAME.remediation.yml (or .yaml)
// beside it as its remediation file.
func listEstateDir(dir string) ([]Estate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var problems Problems
	byName := map[string]*Estate{}
	remediation := map[string]string{} // estate name → its remediation file
	for _, de := range entries {
		file := de.Name()
		if strings.HasPrefix(file, ".") {
			continue // editors' and tools' files (.#x.yml, .x.yml.swp) and hidden ones
		}
		name, isRemediation, ok := estateFileName(file)
		if !ok {
			continue
		}
		full := filepath.Join(dir, file)
		// A symbolic link counts as what it points to (a ConfigMap mounts
		// its keys as links); a directory named x.yml is no estate.
		if fi, err := os.Stat(full); err != nil || fi.IsDir() {
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", file, err))
			}
			continue
		}
		if !EstateNameRE.MatchString(name) {
			problems = append(problems, fmt.Sprintf("%s: %q is not an estate name: it must match %s", file, name, EstateNameRE))
			continue
		}
		if isRemediation {
			if other, dup := remediation[name]; dup {
				problems = append(problems, fmt.Sprintf("%s: estate %s already has the remediation file %s", file, name, filepath.Base(other)))
				continue
			}
			remediation[name] = full
			continue
		}
		if other, dup := byName[name]; dup {
			problems = append(problems, fmt.Sprintf("%s: estate %s is already %s", file, name, filepath.Base(other.ConfigFile)))
			continue
		}
		byName[name] = &Estate{Name: name, ConfigFile: full}
	}
	for name, file := range remediation {
		e, ok := byName[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no estate file %s.yml beside it (a remediation file belongs to an estate)", filepath.Base(file), name))
			continue
		}
		e.RemediationFile = file
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("estates directory %s: %w", dir, problems)
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("estates directory %s holds no estate file (NAME.yml or NAME.yaml)", dir)
	}
	estates := make([]Estate, 0, len(byName))
	for _, e := range byName {
		estates = append(estates, *e)
	}
	sort.Slice(estates, func(i, j int) bool { return estates[i].Name < estates[j].Name })
	return estates, nil
}

// estateFileName splits a directory entry into the estate it belongs to
// and whether it is that estate's remediation file; ok is false for a file
// that is neither.
func estateFileName(file string) (name string, isRemediation, ok bool) {
	for _, ext := range remediationExts {
		if n, found := strings.CutSuffix(file, ext); found {
			return n, true, true
		}
	}
	for _, ext := range estateExts {
		if n, found := strings.CutSuffix(file, ext); found {
			return n, false, true
		}
	}
	return "", false, false
}

// listEstateFile reads a list of estates, checked as strictly as a
// configuration file: every problem named by its field and line.
func listEstateFile(path string) ([]Estate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list EstateList
	c, err := Decode(data, filepath.Dir(path), &list)
	if err != nil {
		return nil, fmt.Errorf("estates list %s: %w", path, err)
	}
	if len(list.Estates) == 0 {
		c.Addf("estates", "lists no estate")
	}
	seen := map[string]int{}
	remediationFiles := map[string]int{} // a remediation file → the estate that names it
	estates := make([]Estate, 0, len(list.Estates))
	for i, entry := range list.Estates {
		p := fmt.Sprintf("estates[%d]", i)
		switch first, dup := seen[entry.Name]; {
		case !EstateNameRE.MatchString(entry.Name):
			c.Addf(p+".name", "%q is not an estate name: it must match %s", entry.Name, EstateNameRE)
		case dup:
			c.Addf(p+".name", "estate %s is already estates[%d]", entry.Name, first)
		default:
			seen[entry.Name] = i
		}
		if entry.ConfigFile == "" {
			c.Addf(p+".config_file", "is required")
		}
		e := Estate{Name: entry.Name, ConfigFile: c.Path(entry.ConfigFile), RemediationFile: c.Path(entry.RemediationFile)}
		// Two estates may watch through one configuration file (they are
		// still two instances), but two receivers on one remediation file
		// would share a journal.
		if f := e.RemediationFile; f != "" {
			if other, dup := remediationFiles[f]; dup {
				c.Addf(p+".remediation_file", "is estates[%d]'s too: each estate's receiver keeps its own journal", other)
			} else {
				remediationFiles[f] = i
			}
		}
		estates = append(estates, e)
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("estates list %s: %w", path, err)
	}
	return estates, nil
}
