package iap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The decoders below turn IAP's answers (2022.1 to Platform 6) into typed
// facts. They take the body alone so that they can be fuzzed and fed with
// captured answers.

// healthStatus is the part of GET /health/status the exporter uses.
type healthStatus struct {
	ServerID string `json:"serverId"`
	Services []struct {
		Service string `json:"service"`
		Status  string `json:"status"`
	} `json:"services"`
	Apps     string `json:"apps"`
	Adapters string `json:"adapters"`
}

func decodeHealthStatus(b []byte) (healthStatus, error) {
	var h healthStatus
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("decoding /health/status: %w", err)
	}
	if h.ServerID == "" && h.Services == nil && h.Apps == "" {
		return h, errors.New("decoding /health/status: no serverId, services or apps in the answer")
	}
	return h, nil
}

// services is IAP's view of its dependencies.
func (h healthStatus) services() []topology.IAPService {
	out := make([]topology.IAPService, 0, len(h.Services))
	for _, s := range h.Services {
		out = append(out, topology.IAPService{Name: s.Service, Running: s.Status == "running"})
	}
	return out
}

// summary turns "running" or "degraded" into a Tristate; anything else is unknown.
func summary(s string) topology.Tristate {
	switch s {
	case "running":
		return topology.True
	case "degraded":
		return topology.False
	}
	return topology.Unknown
}

// serverInfo is the part of GET /health/server the exporter uses.
type serverInfo struct {
	Version string `json:"version"`
	Release string `json:"release"`
}

func decodeServerInfo(b []byte) (serverInfo, error) {
	var s serverInfo
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decoding /health/server: %w", err)
	}
	if s.Version == "" && s.Release == "" {
		return s, errors.New("decoding /health/server: no version or release in the answer")
	}
	return s, nil
}

// modulePage is one page of GET /health/applications or /health/adapters.
// Total is -1 when the answer has none (the field is assumed, not documented).
type modulePage struct {
	Modules []topology.IAPModule
	Total   int
}

func decodeModulePage(b []byte, adapters bool) (modulePage, error) {
	var raw struct {
		Results *[]struct {
			ID         string `json:"id"`
			PackageID  string `json:"package_id"`
			State      string `json:"state"`
			Connection *struct {
				State string `json:"state"`
			} `json:"connection"`
		} `json:"results"`
		Total *int `json:"total"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return modulePage{}, fmt.Errorf("decoding module list: %w", err)
	}
	if raw.Results == nil {
		return modulePage{}, errors.New("decoding module list: no results in the answer")
	}
	page := modulePage{Total: -1, Modules: make([]topology.IAPModule, 0, len(*raw.Results))}
	if raw.Total != nil {
		page.Total = *raw.Total
	}
	for _, r := range *raw.Results {
		m := topology.IAPModule{Name: r.ID, PackageID: r.PackageID, State: r.State, Healthy: r.State == "RUNNING"}
		if adapters {
			if r.Connection != nil {
				m.Connection = r.Connection.State
			}
			m.Healthy = m.Healthy && m.Connection == "ONLINE"
		}
		page.Modules = append(page.Modules, m)
	}
	return page, nil
}

// workers is GET /workflow_engine/workers/status (2023.1+): whether the
// task and job workers run, and whether the task worker starts at boot.
type workers struct {
	Task, Job, TaskAtStartup topology.Tristate
}

func decodeWorkers(b []byte) (workers, error) {
	type worker struct {
		Running      *bool `json:"running"`
		StartupValue *bool `json:"startupValue"`
	}
	var raw struct {
		TaskWorker *worker `json:"taskWorker"`
		JobWorker  *worker `json:"jobWorker"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return workers{}, fmt.Errorf("decoding workers/status: %w", err)
	}
	if raw.TaskWorker == nil || raw.TaskWorker.Running == nil {
		return workers{}, errors.New("decoding workers/status: no taskWorker.running in the answer")
	}
	w := workers{Task: topology.TristateOf(*raw.TaskWorker.Running)}
	if v := raw.TaskWorker.StartupValue; v != nil {
		w.TaskAtStartup = topology.TristateOf(*v)
	}
	if raw.JobWorker != nil && raw.JobWorker.Running != nil {
		w.Job = topology.TristateOf(*raw.JobWorker.Running)
	}
	return w, nil
}

// decodeActive reads the old GET /workflow_engine/active: a bare true or false.
func decodeActive(b []byte) (bool, error) {
	var active bool
	if err := json.Unmarshal(b, &active); err != nil {
		return false, fmt.Errorf("decoding /workflow_engine/active: %w", err)
	}
	return active, nil
}

// decodeProfiles reads the task worker setting of the profile this server
// runs (metadata.isActive) from GET /profiles (up to 2023.2). Itential's HA
// guide names the key taskWorkerProps.activate, the one public capture
// taskWorkerProps.active: either is accepted. Unknown when no profile is
// marked active or it sets neither key.
func decodeProfiles(b []byte) (topology.Tristate, error) {
	var raw struct {
		Results *[]struct {
			Metadata struct {
				IsActive bool `json:"isActive"`
			} `json:"metadata"`
			Profile struct {
				TaskWorkerProps struct {
					Active   *bool `json:"active"`
					Activate *bool `json:"activate"`
				} `json:"taskWorkerProps"`
			} `json:"profile"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return topology.Unknown, fmt.Errorf("decoding /profiles: %w", err)
	}
	if raw.Results == nil {
		return topology.Unknown, errors.New("decoding /profiles: no results in the answer")
	}
	for _, p := range *raw.Results {
		if !p.Metadata.IsActive {
			continue
		}
		props := p.Profile.TaskWorkerProps
		switch {
		case props.Activate != nil:
			return topology.TristateOf(*props.Activate), nil
		case props.Active != nil:
			return topology.TristateOf(*props.Active), nil
		}
	}
	return topology.Unknown, nil
}

// serverConfig is what Platform 6's GET /server/config says of the workers.
type serverConfig struct {
	Task, Job topology.Tristate
}

// decodeServerConfig reads task_worker_enabled and job_worker_enabled from
// GET /server/config: {name, value, origin} per key, as a list, a list
// under "results", or an object keyed by name. A value may be a boolean or
// the string "true"/"false"; a key left out is Unknown.
func decodeServerConfig(b []byte) (serverConfig, error) {
	type entry struct {
		Name  string `json:"name"`
		Value any    `json:"value"`
	}
	var entries []entry
	if err := json.Unmarshal(b, &entries); err != nil {
		var wrapped struct {
			Results *[]entry `json:"results"`
		}
		if err2 := json.Unmarshal(b, &wrapped); err2 == nil && wrapped.Results != nil {
			entries = *wrapped.Results
		} else {
			var keyed map[string]json.RawMessage
			if err3 := json.Unmarshal(b, &keyed); err3 != nil {
				return serverConfig{}, fmt.Errorf("decoding /server/config: %w", err)
			}
			for name, raw := range keyed {
				e := entry{Name: name}
				var inner entry
				if json.Unmarshal(raw, &inner) == nil && inner.Value != nil {
					e.Value = inner.Value
				} else if json.Unmarshal(raw, &e.Value) != nil {
					continue
				}
				entries = append(entries, e)
			}
		}
	}
	var c serverConfig
	for _, e := range entries {
		t := boolSetting(e.Value)
		switch e.Name {
		case "task_worker_enabled":
			c.Task = t
		case "job_worker_enabled":
			c.Job = t
		}
	}
	return c, nil
}

func boolSetting(v any) topology.Tristate {
	switch v := v.(type) {
	case bool:
		return topology.TristateOf(v)
	case string:
		switch strings.ToLower(v) {
		case "true":
			return topology.True
		case "false":
			return topology.False
		}
	}
	return topology.Unknown
}

// decodeLoginToken reads POST /login's answer: the token as plain text.
// A JSON string is accepted too.
func decodeLoginToken(b []byte) (string, error) {
	tok := string(bytes.TrimSpace(b))
	if strings.HasPrefix(tok, `"`) {
		if err := json.Unmarshal([]byte(tok), &tok); err != nil {
			return "", fmt.Errorf("decoding the login token: %w", err)
		}
	}
	if tok == "" || strings.ContainsAny(tok, " \t\r\n;{}") {
		return "", errors.New("decoding the login token: the answer is not a token")
	}
	return tok, nil
}

// decodeOAuthToken reads POST /oauth/token's answer.
func decodeOAuthToken(b []byte) (string, error) {
	var raw struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return "", fmt.Errorf("decoding the OAuth token: %w", err)
	}
	if raw.AccessToken == "" {
		return "", errors.New("decoding the OAuth token: no access_token in the answer")
	}
	return raw.AccessToken, nil
}

// decodeMessage reads the {"message": …} body of an IAP error, if any.
func decodeMessage(b []byte) string {
	var raw struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &raw) != nil {
		return ""
	}
	return raw.Message
}
