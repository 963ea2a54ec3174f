package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
	"github.com/iapha/iap_ha_exporter/remediation"
)

// Rule: in multi-estate mode a remediation command acts on the journal
// and lease of the one estate --estate names, which must have a
// remediation file; in single-estate mode --estate is refused and the
// command reads --remediation.config.file as before.
func TestRemediationCommandsNameTheEstate(t *testing.T) {
	estates := []estateFiles{
		{Name: "prod-emea", ConfigFile: "/etc/estates/prod-emea.yml", RemediationFile: "/etc/estates/prod-emea.remediation.yml"},
		{Name: "staging", ConfigFile: "/etc/estates/staging.yml"},
	}
	for _, tt := range []struct {
		name                string
		multi               bool
		estate, remediation string
		wantConfig          string
		wantFile            string
		wantErr             string
	}{
		{name: "single estate", remediation: "/etc/remediation.yml", wantConfig: "/etc/config.yml", wantFile: "/etc/remediation.yml"},
		{name: "single estate without a remediation file", wantErr: "--remediation.config.file is required"},
		{name: "single estate, --estate given", estate: "prod-emea", remediation: "/etc/remediation.yml", wantErr: "without it there is one estate"},
		{name: "an estate named", multi: true, estate: "prod-emea", wantConfig: "/etc/estates/prod-emea.yml", wantFile: "/etc/estates/prod-emea.remediation.yml"},
		{name: "no estate named", multi: true, wantErr: "--estate is required with --config.estates: one of prod-emea, staging"},
		{name: "an unknown estate", multi: true, estate: "prod-apac", wantErr: "--estate prod-apac: no such estate"},
		{name: "an estate without remediation file", multi: true, estate: "staging", wantErr: "estate staging has no remediation file"},
		{name: "--remediation.config.file with estates", multi: true, estate: "prod-emea", remediation: "/etc/remediation.yml", wantErr: "--remediation.config.file is for one estate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := addRemediationFlags(kingpin.New("test", ""))
			*f.configFile, f.estate = tt.remediation, tt.estate
			if tt.multi {
				f.estates = func() ([]estateFiles, error) { return estates, nil }
			}
			opts, file, err := f.forEstate(exporter.Options{ConfigFile: "/etc/config.yml"})
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one saying %q", err, tt.wantErr)
				}
			case err != nil:
				t.Error(err)
			case opts.ConfigFile != tt.wantConfig || file != tt.wantFile:
				t.Errorf("configuration %s, remediation file %s; want %s, %s", opts.ConfigFile, file, tt.wantConfig, tt.wantFile)
			}
		})
	}
}

// Rule: the router of a multi-estate exporter answers on the one webhook
// path; an estate without a remediation file is answered 200 and counted
// on the exporter's registry; each estate's receiver metrics register in
// a registry of their own; two estates naming one journal are a problem
// --config.check prints, naming both.
func TestServeEstates(t *testing.T) {
	dead := closedAddress(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("token", "a-token\n")
	cfg, err := config.Parse([]byte(`sites: [{name: dc1, role: active}]
iap:
  servers: [{name: iap-1, url: "http://`+dead+`", site: dc1, role: active, cluster: prod}]
redis: [{name: dc1, site: dc1, sentinels: [{address: "`+dead+`"}]}]
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	remediationFor := func(journal, prefix string) string {
		return "site: dc1\nauth: {bearer_token_file: token}\njournal_file: " + journal + "\nlease: {redis: dc1, key_prefix: " + prefix + "}\nclusters: [{name: prod}]\n"
	}
	unreachable := func(context.Context) (*topology.Observation, error) { return nil, errors.New("no probes in this test") }
	estates := []remediation.Estate{
		{Name: "a", File: write("a.remediation.yml", remediationFor("journal-a", "a:")), Config: cfg, Scrape: unreachable},
		{Name: "b", File: write("b.remediation.yml", remediationFor("journal-b", "b:")), Config: cfg, Scrape: unreachable},
		{Name: "c", Config: cfg, Scrape: unreachable},
	}
	f := addRemediationFlags(kingpin.New("test", ""))
	webConfig, systemd := "", false
	toolkit := &web.FlagConfig{WebListenAddresses: &[]string{}, WebSystemdSocket: &systemd, WebConfigFile: &webConfig}
	if errs := f.checkEstates(estates, ""); len(errs) != 0 {
		t.Errorf("--config.check of good estates: %v", errs)
	}
	mux := http.NewServeMux()
	registry := prometheus.NewRegistry()
	rt, stop, err := f.serveEstates(estates, mux, toolkit, listenOptions{}, registry, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	notification, err := os.ReadFile("../../remediation/testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(estate string) int {
		body := strings.ReplaceAll(string(notification), `"labels":{`, `"labels":{"estate":"`+estate+`",`)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+remediationPath, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for estate, want := range map[string]int{"a": http.StatusAccepted, "b": http.StatusAccepted, "c": http.StatusOK, "d": http.StatusNotFound} {
		if code := post(estate); code != want {
			t.Errorf("estate %s: %d, want %d", estate, code, want)
		}
	}
	if err := testutil.GatherAndCompare(registry, strings.NewReader(`
# HELP iap_ha_remediation_skipped_total Alerts the receiver did not act on, by the reason it gave.
# TYPE iap_ha_remediation_skipped_total counter
iap_ha_remediation_skipped_total{reason="estate_not_remediated"} 2
`), "iap_ha_remediation_skipped_total"); err != nil {
		t.Error(err)
	}
	for estate, want := range map[string]int{"a": 8, "b": 8, "c": 0} {
		reg := prometheus.NewRegistry()
		if err := reg.Register(rt.Collector(estate)); err != nil {
			t.Fatalf("estate %s's receiver metrics in a registry of their own: %v", estate, err)
		}
		if n, err := testutil.GatherAndCount(reg); err != nil || (n == 0) != (want == 0) {
			t.Errorf("estate %s's registry: %d series (%v), want them %s", estate, n, err, map[bool]string{true: "absent", false: "present"}[want == 0])
		}
	}

	estates[1].File = write("b.remediation.yml", remediationFor("journal-a", "b:"))
	errs := f.checkEstates(estates, "")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "estates a and b both name journal_file") {
		t.Errorf("--config.check of two estates naming one journal: %v", errs)
	}
}
