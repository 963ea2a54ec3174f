package mongodb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// testPKI is a CA with a server and a client certificate, written as PEM files.
type testPKI struct {
	dir                           string
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "member"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	serverDER, serverKey := issue(2, x509.ExtKeyUsageServerAuth)
	clientDER, clientKey := issue(3, x509.ExtKeyUsageClientAuth)
	clientKeyDER, _ := x509.MarshalECPrivateKey(clientKey)
	p := testPKI{
		dir:        dir,
		caFile:     write("ca.pem", "CERTIFICATE", caDER),
		clientCert: write("client.pem", "CERTIFICATE", clientDER),
		clientKey:  write("client-key.pem", "EC PRIVATE KEY", clientKeyDER),
		server:     tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey},
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	return p
}

func TestProbeTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	mutual := serverTLS.Clone()
	mutual.ClientAuth = tls.RequireAndVerifyClientCert
	tests := []struct {
		name    string
		server  *tls.Config
		client  promconfig.TLSConfig
		wantErr string
	}{
		{"CA file", serverTLS, promconfig.TLSConfig{CAFile: pki.caFile}, ""},
		{"unknown authority", serverTLS, promconfig.TLSConfig{}, "certificate signed by unknown authority"},
		{"insecure", serverTLS, promconfig.TLSConfig{InsecureSkipVerify: true}, ""},
		{"client certificate", mutual, promconfig.TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, ""},
		{"client certificate missing", mutual, promconfig.TLSConfig{CAFile: pki.caFile}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client
			_, p := startSim(t, "pss", mongosim.Options{TLS: tt.server}, func(c *config.ReplicaSet) {
				c.TLS = &client
				c.DirectMembers = false
				c.Timeout = model.Duration(time.Second) // a refused handshake is retried until then
			})
			rs := p.Probe(context.Background())
			switch {
			case tt.wantErr == "" && !rs.Up:
				t.Fatalf("not up: %s", rs.Error)
			case tt.wantErr != "" && (rs.Up || !strings.Contains(rs.Error, tt.wantErr)):
				t.Errorf("up %v, error %q; want down with %q", rs.Up, rs.Error, tt.wantErr)
			}
		})
	}
}
