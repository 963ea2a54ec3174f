package iap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addSeeds seeds a fuzz target with captured answers and a few broken ones.
func addSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		f.Add(readTestdata(f, name))
	}
	for _, s := range []string{``, `null`, `{}`, `[]`, `true`, `{"results":null}`, `{"results":[{"id":1}]}`, `{"services":[null]}`} {
		f.Add([]byte(s))
	}
}

func TestDecodeHealthStatus(t *testing.T) {
	for _, tc := range []struct {
		file           string
		wantID         string
		wantServices   []topology.IAPService
		apps, adapters topology.Tristate
	}{
		{"health_status_2023.2.json", "582672c5a088e6f0d3b4e0a7a0c2d4e2c9f1e0b3a6d5c4b3a2f1e0d9c8b7a6f5",
			[]topology.IAPService{{Name: "redis", Running: true}, {Name: "mongo", Running: true}, {Name: "vault", Running: true}, {Name: "rabbitmq", Running: true}}, topology.True, topology.True},
		{"health_status_failed.json", "0a:7c:84:cd:c1:91:3000",
			[]topology.IAPService{{Name: "redis", Running: false}, {Name: "mongo", Running: true}}, topology.False, topology.True},
		{"health_status_6.json", "iap-dc1-1",
			[]topology.IAPService{{Name: "redis", Running: true}, {Name: "mongo", Running: true}}, topology.True, topology.False},
	} {
		h, err := decodeHealthStatus(readTestdata(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		svcs := h.services()
		if h.ServerID != tc.wantID || summary(h.Apps) != tc.apps || summary(h.Adapters) != tc.adapters || len(svcs) != len(tc.wantServices) {
			t.Fatalf("%s: got %+v", tc.file, h)
		}
		for i := range svcs {
			if svcs[i] != tc.wantServices[i] {
				t.Errorf("%s: service %d is %+v, want %+v", tc.file, i, svcs[i], tc.wantServices[i])
			}
		}
	}
	for _, bad := range []string{`{}`, `{"serverId":5}`, `<html>`} {
		if _, err := decodeHealthStatus([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
}

func TestDecodeServerInfo(t *testing.T) {
	for file, want := range map[string]serverInfo{
		"health_server_2023.2.json": {Version: "15.8.10-2023.2.44", Release: "2023.2.9"},
		"health_server_6.json":      {Version: "6.1.3"},
	} {
		got, err := decodeServerInfo(readTestdata(t, file))
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", file, got, err, want)
		}
	}
}

func TestDecodeModulePage(t *testing.T) {
	page, err := decodeModulePage(readTestdata(t, "health_adapters.json"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []topology.IAPModule{
		{Name: "ServiceNow", PackageID: "@itential/adapter-servicenow", State: "RUNNING", Connection: "ONLINE", Healthy: true},
		{Name: "IAG-iag1", PackageID: "@itential/adapter-automation_gateway", State: "RUNNING", Connection: "OFFLINE", Healthy: false},
		{Name: "email", PackageID: "@itential/adapter-email", State: "STOPPED", Healthy: false},
	}
	if page.Total != 3 || len(page.Modules) != len(want) {
		t.Fatalf("got %+v", page)
	}
	for i := range want {
		if page.Modules[i] != want[i] {
			t.Errorf("adapter %d: %+v, want %+v", i, page.Modules[i], want[i])
		}
	}

	page, err = decodeModulePage(readTestdata(t, "health_applications_no_total.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != -1 || len(page.Modules) != 2 || !page.Modules[0].Healthy || page.Modules[1].Healthy || page.Modules[1].State != "DEAD" {
		t.Errorf("got %+v, want no total, WorkFlowEngine healthy, OperationsManager DEAD", page)
	}
}

func TestDecodeWorkers(t *testing.T) {
	got, err := decodeWorkers(readTestdata(t, "workers_status.json"))
	if want := (workers{Task: topology.True, Job: topology.True, TaskAtStartup: topology.False}); err != nil || got != want {
		t.Errorf("%+v, %v; want %+v", got, err, want)
	}
	if _, err := decodeWorkers([]byte(`{"jobWorker":{"running":true}}`)); err == nil {
		t.Error("an answer without taskWorker decoded")
	}
}

func TestDecodeProfiles(t *testing.T) {
	for file, want := range map[string]topology.Tristate{
		"profiles_activate.json": topology.False, // the active profile (iap-dc2-1), not the first one
		"profiles_active.json":   topology.True,
	} {
		got, err := decodeProfiles(readTestdata(t, file))
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", file, got, err, want)
		}
	}
	got, err := decodeProfiles([]byte(`{"results":[{"metadata":{"isActive":false},"profile":{"taskWorkerProps":{"active":true}}}]}`))
	if err != nil || got != topology.Unknown {
		t.Errorf("no active profile: %v, %v; want unknown", got, err)
	}
}

func TestDecodeTokens(t *testing.T) {
	for body, want := range map[string]string{"3b96ab37d70cc7d4\n": "3b96ab37d70cc7d4", `"abc123"`: "abc123"} {
		if got, err := decodeLoginToken([]byte(body)); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", body, got, err, want)
		}
	}
	for _, bad := range []string{"", `{"message":"Invalid username or password"}`, "<html><body>proxy error</body></html>"} {
		if _, err := decodeLoginToken([]byte(bad)); err == nil {
			t.Errorf("%q: decoded as a token", bad)
		}
	}
	if got, err := decodeOAuthToken([]byte(`{"access_token":"eyJ.eyJ.sig","token_type":"bearer","expires_in":3600}`)); err != nil || got != "eyJ.eyJ.sig" {
		t.Errorf("oauth: %q, %v", got, err)
	}
}

func FuzzDecodeHealthStatus(f *testing.F) {
	addSeeds(f, "health_status_2023.2.json", "health_status_failed.json", "health_status_6.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := decodeHealthStatus(b); err == nil {
			h.services()
		}
	})
}

func FuzzDecodeServerInfo(f *testing.F) {
	addSeeds(f, "health_server_2023.2.json", "health_server_6.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeServerInfo(b); err == nil && s.Version == "" && s.Release == "" {
			t.Error("decoded an answer without version or release")
		}
	})
}

func FuzzDecodeModulePage(f *testing.F) {
	addSeeds(f, "health_adapters.json", "health_applications_no_total.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, adapters := range []bool{false, true} {
			page, err := decodeModulePage(b, adapters)
			if err != nil {
				continue
			}
			for _, m := range page.Modules {
				if m.Healthy && (m.State != "RUNNING" || adapters && m.Connection != "ONLINE") {
					t.Errorf("%+v counted healthy", m)
				}
			}
		}
	})
}

func FuzzDecodeWorkers(f *testing.F) {
	addSeeds(f, "workers_status.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, err := decodeWorkers(b); err == nil && w.Task == topology.Unknown {
			t.Error("decoded without a task worker state")
		}
	})
}

func FuzzDecodeActive(f *testing.F) {
	for _, s := range []string{"true", "false", " true\n", "", "1", `"true"`, "null"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { decodeActive(b) })
}

func FuzzDecodeProfiles(f *testing.F) {
	addSeeds(f, "profiles_activate.json", "profiles_active.json")
	f.Fuzz(func(t *testing.T, b []byte) { decodeProfiles(b) })
}

func FuzzDecodeTokens(f *testing.F) {
	for _, s := range []string{"3b96ab37d70cc7d4", `"abc"`, `{"access_token":"x"}`, "", `"`, "a b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if tok, err := decodeLoginToken(b); err == nil && tok == "" {
			t.Error("empty login token accepted")
		}
		if tok, err := decodeOAuthToken(b); err == nil && tok == "" {
			t.Error("empty OAuth token accepted")
		}
	})
}

// GET /server/config's shape is {name, value, origin} per key; the probe
// reads it as a list, a list under results, or an object keyed by name.
func TestDecodeServerConfig(t *testing.T) {
	for _, tc := range []struct {
		body      string
		task, job topology.Tristate
	}{
		{`[{"name":"task_worker_enabled","value":false,"origin":"config file"},{"name":"job_worker_enabled","value":true,"origin":"default"}]`, topology.False, topology.True},
		{`{"results":[{"name":"task_worker_enabled","value":"true","origin":"env"}]}`, topology.True, topology.Unknown},
		{`{"task_worker_enabled":{"name":"task_worker_enabled","value":true,"origin":"config file"},"job_worker_enabled":false}`, topology.True, topology.False},
		{`[{"name":"redis_name","value":"itentialmaster"}]`, topology.Unknown, topology.Unknown},
	} {
		c, err := decodeServerConfig([]byte(tc.body))
		if err != nil || c.Task != tc.task || c.Job != tc.job {
			t.Errorf("%s: task %v job %v (%v), want %v %v", tc.body, c.Task, c.Job, err, tc.task, tc.job)
		}
	}
	if _, err := decodeServerConfig([]byte(`"nope"`)); err == nil {
		t.Error("a string decoded as a configuration")
	}
}
