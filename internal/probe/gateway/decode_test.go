package gateway

import (
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDevicePage(t *testing.T) {
	for _, tc := range []struct {
		file      string
		total     int // -1: no total_count
		size      int
		wantError bool
	}{
		{file: "devices_total_count.json", total: 4312, size: 1},
		{file: "devices_no_total_count.json", total: -1, size: 1},
		{file: "devices_empty.json", total: -1, size: 0},
		{file: "status.json", total: -1, size: 0},
		{file: "error_500.json", total: -1, size: 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := decodeDevicePage(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			total := -1
			if p.Meta.TotalCount != nil {
				total = *p.Meta.TotalCount
			}
			if total != tc.total || p.size() != tc.size {
				t.Errorf("total %d size %d, want total %d size %d", total, p.size(), tc.total, tc.size)
			}
		})
	}
}

func TestDevicePageSizeWithoutCount(t *testing.T) {
	p, err := decodeDevicePage([]byte(`{"meta":{},"data":[{"name":"a"},{"name":"b"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.size() != 2 {
		t.Errorf("size %d, want 2 (the data itself when meta has no count)", p.size())
	}
}

func TestDecodeRejects(t *testing.T) {
	var (
		poll    = func(b []byte) error { _, err := decodePoll(b); return err }
		status  = func(b []byte) error { _, err := decodeStatus(b); return err }
		login   = func(b []byte) error { _, err := decodeLogin(b); return err }
		devices = func(b []byte) error { _, err := decodeDevicePage(b); return err }
	)
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		answer string
	}{
		{"poll success=false", poll, `{"success":false,"hostname":"iag1"}`},
		{"poll HTML", poll, `<html>Bad Gateway</html>`},
		{"status error body", status, string(readTestdata(t, "error_500.json"))},
		{"login error body", login, string(readTestdata(t, "login_401.json"))},
		{"devices negative total", devices, `{"meta":{"count":1,"total_count":-3}}`},
		{"devices data object", devices, `{"meta":{"count":1},"data":{}}`},
		{"devices count string", devices, `{"meta":{"count":"1"}}`},
	} {
		if tc.decode([]byte(tc.answer)) == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
}

func TestDecodeAnswers(t *testing.T) {
	p, err := decodePoll(readTestdata(t, "poll.json"))
	if err != nil || p.Hostname != "iag1" || p.ServiceID != "0a:7c:84:cd:c1:91:8083" {
		t.Errorf("poll: %+v, %v", p, err)
	}
	s, err := decodeStatus(readTestdata(t, "status.json"))
	if err != nil || s.Version != "4.3.7" || s.AnsibleVersion != "2.11.12" {
		t.Errorf("status: %+v, %v", s, err)
	}
	token, err := decodeLogin(readTestdata(t, "login.json"))
	if err != nil || token != "8b1c6f3e-2d4a-4f0e-9a3b-5c7d9e1f2a4b" {
		t.Errorf("login: %q, %v", token, err)
	}
	for file, want := range map[string]string{
		"login_401.json":           "Invalid username or password",
		"session_expired_401.json": "The specified authorization token is malformed or does not correspond with an active session",
		"error_500.json":           "Internal server error: database is locked",
		"poll.json":                "",
	} {
		if got := errorMessage(readTestdata(t, file)); got != want {
			t.Errorf("errorMessage(%s) = %q, want %q", file, got, want)
		}
	}
}

// The fuzz tests check that no answer, however malformed, panics a decoder
// or yields a negative device count.

func addSeeds(f *testing.F, files ...string) {
	for _, file := range files {
		f.Add(readTestdata(f, file))
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"meta":null,"data":null}`))
}

func FuzzDecodePoll(f *testing.F) {
	addSeeds(f, "poll.json", "error_500.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePoll(b); err == nil && !p.Success {
			t.Errorf("accepted an unsuccessful poll: %+v", p)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	addSeeds(f, "status.json", "error_500.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeStatus(b); err == nil && s.Version == "" {
			t.Errorf("accepted a status without version: %+v", s)
		}
	})
}

func FuzzDecodeDevicePage(f *testing.F) {
	addSeeds(f, "devices_total_count.json", "devices_no_total_count.json", "devices_empty.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeDevicePage(b)
		if err != nil {
			return
		}
		if p.size() < 0 || p.Meta.TotalCount != nil && *p.Meta.TotalCount < 0 {
			t.Errorf("negative count accepted: %+v", p.Meta)
		}
	})
}

func FuzzDecodeLogin(f *testing.F) {
	addSeeds(f, "login.json", "login_401.json", "session_expired_401.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if token, err := decodeLogin(b); err == nil && token == "" {
			t.Error("accepted an empty token")
		}
		_ = errorMessage(b)
	})
}
