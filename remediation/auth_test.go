package remediation

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckAuthentication(t *testing.T) {
	dir := t.TempDir()
	web := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := web("users.yml", "basic_auth_users:\n  alertmanager: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n")
	mtls := web("mtls.yml", "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n")
	tlsOnly := web("tls.yml", "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n")
	withToken := &Config{Auth: WebhookAuth{BearerToken: "t"}}
	none := &Config{}
	tests := []struct {
		name     string
		cfg      *Config
		web      string
		insecure bool
		ok       bool
	}{
		{"own bearer token", withToken, "", false, true},
		{"web config users", none, users, false, true},
		{"web config client certificates", none, mtls, false, true},
		{"TLS without client certificates", none, tlsOnly, false, false},
		{"nothing", none, "", false, false},
		{"nothing, insecure on purpose", none, "", true, true},
	}
	for _, tt := range tests {
		err := CheckAuthentication(tt.cfg, tt.web, tt.insecure)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrUnauthenticated)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
