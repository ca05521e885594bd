//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/bcrypt"

	"lbd/balancer"
	"lbd/config"
	"lbd/director"
	"lbd/internal/testutil"
)

var testConsoleRetry = consoleRetry{first: 20 * time.Millisecond, most: 200 * time.Millisecond}

// consoleConfig is a configuration without virtual servers (no IPVS
// needed) whose console listens on addr; consoleExtra goes into [console].
func consoleConfig(t *testing.T, addr string, password bool, consoleExtra string) string {
	t.Helper()
	hash := ""
	if password {
		h, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hash = fmt.Sprintf("password_hash = %q\n", h)
	}
	return fmt.Sprintf("[global]\ninterface = \"lo\"\nlisten = %q\n[console]\n%s%s", addr, hash, consoleExtra)
}

// consoleRig loads body, calls beforeStart, then runs a director and the
// console supervisor under test until the test ends.
func consoleRig(t *testing.T, body string, beforeStart func()) (path string, logs *testutil.Buffer, d *director.Director) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if beforeStart != nil {
		beforeStart()
	}
	logs = &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	d, err = director.New(director.Options{
		Config:     cfg,
		Logger:     log,
		Sysctl:     balancer.ProcSys{Root: t.TempDir()},
		OpenKernel: func() (balancer.Kernel, error) { return nil, balancer.ErrUnavailable },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { d.Run(ctx); done <- struct{}{} }()
	go func() { superviseConsole(ctx, d, log, testConsoleRetry, &notifier{log: log}); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return path, logs, d
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// consoleAnswers reports whether an HTTP(S) server answers on addr.
func consoleAnswers(url string) bool {
	c := &http.Client{
		Timeout:   500 * time.Millisecond,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// A console whose port is taken at start-up is logged as an ERROR and
// comes up by itself once the port is free; the director keeps running.
func TestConsoleRetriesWhenPortTaken(t *testing.T) {
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squatter.Addr().String()
	_, logs, d := consoleRig(t, consoleConfig(t, addr, true, ""), nil)
	testutil.Eventually(t, 10*time.Second, "an ERROR about the console", func() bool {
		return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "address already in use")
	})
	testutil.Eventually(t, 10*time.Second, "a second attempt", func() bool { return strings.Count(logs.String(), "console down, retrying") >= 2 })
	if _, v := d.Config(); v == "" {
		t.Fatal("director not running")
	}
	squatter.Close()
	testutil.Eventually(t, 10*time.Second, "the console up after the port was freed", func() bool { return consoleAnswers("http://" + addr + "/login") })
}

// TLS certificate and key missing when lbd starts (the console edit that
// set them, then a restart): the console retries and comes up once they
// are restored, without a restart.
func TestConsoleRetriesUntilTLSFilesLoad(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCert(t, certFile, keyFile)
	certPEM, keyPEM := mustRead(t, certFile), mustRead(t, keyFile)
	addr := freeAddr(t)
	extra := fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", certFile, keyFile)
	// Loaded while the files exist (validation may check them), gone by
	// the time the console starts.
	_, logs, _ := consoleRig(t, consoleConfig(t, addr, true, extra), func() {
		os.Remove(certFile)
		os.Remove(keyFile)
	})
	testutil.Eventually(t, 10*time.Second, "an ERROR about the TLS files", func() bool {
		return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "tls")
	})
	if consoleAnswers("https://" + addr + "/login") {
		t.Fatal("console up without its certificate")
	}
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	testutil.Eventually(t, 10*time.Second, "the console up over TLS", func() bool { return consoleAnswers("https://" + addr + "/login") })
}

// A console without a password is reported once and not retried: only a
// reload can bring the password. Many retry intervals pass in virtual time;
// nothing listens, so the test can run in a synctest bubble.
func TestConsoleWithoutPasswordNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, logs, _ := consoleRig(t, consoleConfig(t, "127.0.0.1:1", false, ""), nil)
		synctest.Wait()
		if !strings.Contains(logs.String(), "no console password") {
			t.Fatalf("no ERROR about the password:\n%s", logs)
		}
		time.Sleep(10 * testConsoleRetry.most)
		synctest.Wait()
		if n := strings.Count(logs.String(), "console not started"); n != 1 {
			t.Fatalf("reported %d times; only a reload can bring the password", n)
		}
	})
}

// A console without a password starts after the reload that sets one
// (`lbd passwd`, then SIGHUP).
func TestConsoleStartsAfterPasswordReload(t *testing.T) {
	addr := freeAddr(t)
	path, logs, d := consoleRig(t, consoleConfig(t, addr, false, ""), nil)
	testutil.Eventually(t, 10*time.Second, "an ERROR about the password", func() bool { return strings.Contains(logs.String(), "no console password") })
	var out, errb bytes.Buffer
	if code := passwd([]string{"-config", path}, strings.NewReader("s3cret-pass\n"), &out, &errb); code != 0 {
		t.Fatalf("passwd: %s", errb.String())
	}
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "console up after the reload", func() bool { return consoleAnswers("http://" + addr + "/login") })
}

func writeTestCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lbd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
