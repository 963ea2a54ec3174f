package remediation

import (
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// ErrUnauthenticated: nothing would authenticate the webhook, and anyone
// reaching it could have a server promoted.
var ErrUnauthenticated = errors.New("the remediation webhook would accept notifications from anyone")

// CheckAuthentication refuses to serve a webhook that nobody authenticates:
// the receiver's own bearer token or basic credentials, or the web config's
// (basic_auth_users, or client certificates required and verified), unless
// insecure is set on purpose.
func CheckAuthentication(cfg *Config, webConfigFile string, insecure bool) error {
	if cfg.Auth.Enabled() || insecure {
		return nil
	}
	by, err := Authenticator(cfg, webConfigFile)
	if err != nil || by != "" {
		return err
	}
	return fmt.Errorf("%w: set auth in the remediation file, basic_auth_users or client_auth_type: RequireAndVerifyClientCert in the web config, or start with --remediation.insecure-unauthenticated-webhook", ErrUnauthenticated)
}

// Authenticator says what authenticates the webhook: the remediation
// file's credentials, or the web configuration's users or client
// certificates; "" when nothing does.
func Authenticator(cfg *Config, webConfigFile string) (string, error) {
	switch {
	case cfg.Auth.BearerToken != "":
		return "the remediation file's bearer token", nil
	case cfg.Auth.BasicAuth.Username != "":
		return "the remediation file's basic_auth", nil
	case webConfigFile == "":
		return "", nil
	}
	ok, err := webConfigAuthenticates(webConfigFile)
	if err != nil || !ok {
		return "", err
	}
	return "the web configuration " + webConfigFile, nil
}

// webConfigAuthenticates reads the exporter-toolkit web config for what
// authenticates a client; the toolkit itself checks the rest of the file.
func webConfigAuthenticates(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var web struct {
		TLS struct {
			ClientAuth string `yaml:"client_auth_type"`
		} `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &web); err != nil {
		return false, fmt.Errorf("web config %s: %w", path, err)
	}
	return len(web.Users) > 0 || web.TLS.ClientAuth == "RequireAndVerifyClientCert", nil
}
