package packaging

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

const (
	unitDir  = "/usr/lib/systemd/system"
	unitFile = unitDir + "/" + name + ".service"
)

// TestDeb installs the .deb with dpkg -i on this (throwaway CI) machine,
// checks the dedicated user and the configuration's permissions, verifies
// both units with systemd-analyze, runs the unit's ExecStart line with its
// environment file as its user and scrapes it, then removes the package
// (configuration kept, as dpkg -r does) and purges it (nothing left, the user
// gone). It refuses to run where the package or the user exist already.
func TestDeb(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("installing the .deb needs root (CI runs as root on a throwaway machine)")
	}
	if err := lab.EnsurePackages(map[string]string{"dpkg": "dpkg", "systemd-analyze": "systemd"}); err != nil {
		t.Fatal(err)
	}
	if status := debStatus(t); status != "" {
		t.Fatalf("%s is already on this machine (%s): this test installs and purges its own copy; remove it first (dpkg --purge %s)", name, status, name)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatalf("the user %s exists although the package is not installed: this test creates and removes it; remove it first", name)
	}
	deb := filepath.Join(packages(t), fmt.Sprintf("%s_%s-1_amd64.deb", name, version))

	t.Cleanup(func() {
		if debStatus(t) != "" {
			dpkg(t, "--purge", name)
		}
	})
	dpkg(t, "-i", deb)
	files := strings.Fields(mustOutput(t, "dpkg-query", "-L", name))
	var conffiles []string // dpkg-query lists " <path> <md5sum>" a line
	for _, line := range strings.Split(mustOutput(t, "dpkg-query", "-W", "-f", "${Conffiles}", name), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 {
			conffiles = append(conffiles, fields[0])
		}
	}
	for _, want := range []string{"/etc/default/" + name, "/etc/" + name + "/" + name + ".yml"} {
		if !slices.Contains(conffiles, want) {
			t.Errorf("%s is not a conffile of the .deb (conffiles: %v)", want, conffiles)
		}
	}

	// The postinstall script's system user, and a configuration it can read
	// and nobody else can.
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("no user %s after installing: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid >= 1000 || uid == 0 {
		t.Errorf("user %s has uid %d, want a system uid (1–999)", name, uid)
	}
	if shell := passwdField(t, name, 7); !strings.HasSuffix(shell, "/nologin") {
		t.Errorf("user %s has the shell %s, want nologin", name, shell)
	}
	for path, mode := range map[string]os.FileMode{"/etc/" + name: os.ModeDir | 0o750, "/etc/" + name + "/" + name + ".yml": 0o640} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != 0 || int(st.Gid) != gid {
			t.Errorf("%s: %v %d:%d, want %v root:%s", path, fi.Mode(), st.Uid, st.Gid, mode, name)
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		for _, unit := range []string{unitFile, unitDir + "/" + name + ".socket"} {
			// verify loads the unit with its dependencies and checks that
			// ExecStart's binary exists; it prints problems and exits 0 on
			// some, so any output is a finding.
			out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
			if err != nil || strings.Contains(string(out), filepath.Base(unit)) {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
		}
		// systemd's own exposure score of the sandbox, 0 (locked down) to 10
		// (none): 2.0 and under is what it calls OK.
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", unitFile).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unitFile, err, out)
		}
		m := exposureRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s says no overall exposure:\n%s", unitFile, out)
		}
		if exposure, _ := strconv.ParseFloat(string(m[1]), 64); exposure > 2.0 {
			t.Errorf("the unit's exposure is %.1f, want at most 2.0 (OK):\n%s", exposure, out)
		}
	})

	t.Run("ExecStart", func(t *testing.T) {
		unit := readUnit(t, unitFile)
		argv := execStart(t, unit)
		if u := unit["User"]; len(u) != 1 || u[0] != name {
			t.Fatalf("the unit runs as User=%v, want %s", u, name)
		}
		// Not root, as the unit says: the user must be able to read the
		// configuration the environment file names.
		cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}

		check := exec.Command(argv[0], append(argv[1:], "--config.check")...)
		check.SysProcAttr = cred
		if out, err := check.CombinedOutput(); err != nil {
			t.Fatalf("%v --config.check as %s: %v\n%s", argv, name, err, out)
		}

		// The one change to the unit's line: a free loopback port instead of
		// :9894, which may be taken on a shared machine.
		addr := freeAddr(t)
		cmd := exec.Command(argv[0], append(argv[1:], "--web.listen-address="+addr)...)
		cmd.SysProcAttr = cred
		cmd.Dir = "/"
		logFile, err := os.Create(filepath.Join(t.TempDir(), "exporter.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				log, _ := os.ReadFile(logFile.Name())
				t.Logf("exporter log:\n%s", log)
			}
		}()
		scrape(t, addr, exited)
	})

	// dpkg -r removes the package and keeps its conffiles; --purge removes
	// those too, and the package's purge script the user and its group.
	dpkg(t, "-r", name)
	if _, err := os.Stat("/usr/bin/" + name); !os.IsNotExist(err) {
		t.Errorf("/usr/bin/%s after dpkg -r: %v", name, err)
	}
	for _, f := range conffiles {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("conffile %s gone after dpkg -r (it goes on purge): %v", f, err)
		}
	}
	dpkg(t, "--purge", name)
	if status := debStatus(t); status != "" {
		t.Errorf("dpkg still knows %s after --purge: %s", name, status)
	}
	for _, f := range files {
		if shared[f] {
			continue
		}
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s is left after dpkg --purge", f)
		}
	}
	if _, err := user.Lookup(name); err == nil {
		t.Errorf("the user %s is left after dpkg --purge", name)
	}
	if _, err := user.LookupGroup(name); err == nil {
		t.Errorf("the group %s is left after dpkg --purge", name)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// shared are the directories of the .deb that other packages own too.
var shared = map[string]bool{
	"/.": true, "/etc": true, "/etc/default": true, "/usr": true, "/usr/bin": true, "/usr/lib": true,
	"/usr/lib/systemd": true, "/usr/lib/systemd/system": true, "/usr/share": true, "/usr/share/doc": true,
}

// debStatus is dpkg's status of the package, or "" when dpkg knows nothing
// of it (never installed, or purged).
func debStatus(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name).Output()
	if err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return "" // dpkg-query exits 1 for a package it does not know
		}
		t.Fatal(err)
	}
	status := strings.TrimSpace(string(out))
	if status == "un" {
		return ""
	}
	return status
}

// dpkg runs dpkg, waiting while another dpkg or apt (a lab test installing
// its servers) holds the lock.
func dpkg(t *testing.T, args ...string) {
	t.Helper()
	var out []byte
	var runErr error
	err := lab.Retry(5*time.Minute, time.Second, func() error {
		out, runErr = exec.Command("dpkg", args...).CombinedOutput()
		if runErr != nil && strings.Contains(string(out), "lock") {
			return runErr
		}
		return nil
	})
	if err == nil {
		err = runErr
	}
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := output(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// passwdField is field n (1-based) of user's line in getent passwd.
func passwdField(t *testing.T, user string, n int) string {
	t.Helper()
	fields := strings.Split(strings.TrimSpace(mustOutput(t, "getent", "passwd", user)), ":")
	if len(fields) < n {
		t.Fatalf("getent passwd %s: %v", user, fields)
	}
	return fields[n-1]
}

// readUnit reads the [Service] keys of a unit file; a key may repeat.
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q", path, line)
			}
			keys[k] = append(keys[k], v)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// execStart is the unit's ExecStart line as systemd runs it: the environment
// from Environment= and then every EnvironmentFile= (a leading "-" makes a
// file optional), and "$NAME" alone as a word split at whitespace into words
// (systemd.service(5), "Command lines").
func execStart(t *testing.T, unit map[string][]string) []string {
	t.Helper()
	env := map[string]string{}
	for _, e := range unit["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	read := 0
	for _, f := range unit["EnvironmentFile"] {
		optional := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		b, err := os.ReadFile(f)
		if optional && os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		read++
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is no assignment", f, line)
			}
			env[k] = strings.Trim(v, `"`)
		}
	}
	if read == 0 {
		t.Fatalf("none of the unit's environment files %v is installed", unit["EnvironmentFile"])
	}
	lines := unit["ExecStart"]
	if len(lines) != 1 {
		t.Fatalf("the unit has %d ExecStart lines, want 1", len(lines))
	}
	if strings.ContainsAny(lines[0], `"'\`) {
		t.Fatalf("ExecStart %q quotes or escapes, which this reading of it does not handle", lines[0])
	}
	var argv []string
	for _, word := range strings.Fields(lines[0]) {
		if strings.HasPrefix(word, "$") && !strings.HasPrefix(word, "${") {
			argv = append(argv, strings.Fields(env[word[1:]])...)
			continue
		}
		argv = append(argv, os.Expand(word, func(k string) string { return env[k] }))
	}
	if len(argv) < 2 {
		t.Fatalf("ExecStart %q with %v gives %v: no options from the environment file", lines[0], env, argv)
	}
	return argv
}
