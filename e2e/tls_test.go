package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"dalaba/controller/store"
)

// TestTLS: a controller given a certificate serves wss://; a terminal with
// the county CA in its config connects, one with another CA does not.
func TestTLS(t *testing.T) {
	bin := binaries(t)
	dalaba := filepath.Join(bin, "dalaba")
	dir := t.TempDir()
	ca, caKey := makeCA(t, "融安县 Dalaba CA")
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", ca.Raw)
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	makeServerCert(t, ca, caKey, certFile, keyFile)
	other, _ := makeCA(t, "someone else")
	otherFile := filepath.Join(dir, "other-ca.pem")
	writePEM(t, otherFile, "CERTIFICATE", other.Raw)

	addr := freePort(t)
	data := filepath.Join(dir, "controller")
	run(t, dalaba, "init", "--data", data, "--listen", addr)
	start(t, "controller", []string{"DALABA_TLS_CERT=" + certFile, "DALABA_TLS_KEY=" + keyFile},
		filepath.Join(bin, "dalaba-controller"), "-config", filepath.Join(data, "controller.json"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr
	eventually(t, 10*time.Second, "the controller on https", func() bool {
		resp, err := https.Get(base + "/api/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if resp, err := http.Get("http://" + addr + "/api/v1/health"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("the controller answered plain http while configured for TLS")
	}

	tokRe := regexp.MustCompile(`enroll_token: (\S+)`)
	idRe := regexp.MustCompile(`terminal (\d{23})`)
	env := []string{"SSL_CERT_FILE=" + caFile}
	cli := func(args ...string) string {
		t.Helper()
		cmd := append(args, "--url", base, "--data", data)
		return runEnv(t, env, dalaba, cmd...)
	}
	cli("area", "add", "450224100201", "大巷村", "--parent", "450224000000")
	terminalWith := func(name, ca string) (string, *proc) {
		out := cli("terminal", "enroll", "--area", "450224100201", "--name", name)
		cfg := filepath.Join(dir, name+".json")
		writeJSON(t, cfg, map[string]any{
			"controllers": []string{"wss://" + addr + "/v1/terminal"}, "data_dir": filepath.Join(dir, name),
			"enroll_token": tokRe.FindStringSubmatch(out)[1], "ca_file": ca,
			"relay": map[string]any{"protocol": "sim"}, "audio": map[string]any{"output": "silent"},
		})
		p := start(t, name, nil, filepath.Join(bin, "dalaba-terminal"), "-config", cfg)
		return idRe.FindStringSubmatch(out)[1], p
	}
	good, _ := terminalWith("trusting", caFile)
	bad, badProc := terminalWith("mistrusting", otherFile)
	a := api{base: base, token: readToken(t, data)}
	state := func(id string) string {
		var ts []store.Terminal
		getTLS(t, https, a, "/api/v1/terminals", &ts)
		for _, term := range ts {
			if term.ID == id {
				return term.Status + "/" + term.State
			}
		}
		return ""
	}
	eventually(t, 20*time.Second, "the terminal with the county CA to connect", func() bool { return state(good) == "active/idle" })
	time.Sleep(2 * time.Second) // the other has had as long, and retried
	if s := state(bad); s != "enrolling/offline" {
		t.Fatalf("terminal with a foreign CA is %s, want enrolling/offline (never connected)", s)
	}
	if log, _ := os.ReadFile(badProc.log); !strings.Contains(string(log), "certificate") {
		t.Fatalf("the mistrusting terminal's log does not say why it cannot connect:\n%s", tail(log, 2000))
	}
}

func readToken(t testing.TB, data string) string {
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func getTLS(t testing.TB, c *http.Client, a api, path string, out any) {
	t.Helper()
	saved := http.DefaultClient
	http.DefaultClient = c
	defer func() { http.DefaultClient = saved }()
	a.get(t, path, out)
}

func makeCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func makeServerCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dalaba controller"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	kb, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
