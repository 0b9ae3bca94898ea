package config_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/testenv"
)

// A real TLS server that requires a client certificate its CA signed, and
// clients without one or with another CA's, under TLS 1.2 (the alert ends
// the handshake: IsTLSRefused) and TLS 1.3 (the handshake ends, the alert
// comes with the first read, which RefusalConn turns into the caller's
// error); a client with the right certificate is not refused.
func TestClientCertRefused(t *testing.T) {
	certs := testenv.MakeCerts(t)
	serverCert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := func(file string) *x509.CertPool {
		pem, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(pem)
		return p
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    pool(certs.CA),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	good, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tls.LoadX509KeyPair(certs.OtherClientCert, certs.OtherClientKey)
	if err != nil {
		t.Fatal(err)
	}
	marker := errors.New("refused, as the caller says it")
	// dial connects and reads the server's greeting through RefusalConn.
	roots := pool(certs.CA)
	dial := func(version uint16, chain []tls.Certificate) (handshake, read error) {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
			RootCAs: roots, Certificates: chain, MinVersion: version, MaxVersion: version, ServerName: "127.0.0.1",
		})
		if err != nil {
			return err, nil
		}
		defer conn.Close()
		rc := config.RefusalConn(conn, func(error) error { return marker })
		buf := make([]byte, 2)
		_, err = io.ReadFull(rc, buf)
		return nil, err
	}
	for _, v := range []struct {
		name    string
		version uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}} {
		for _, c := range []struct {
			name  string
			certs []tls.Certificate
		}{{"no certificate", nil}, {"another CA's", []tls.Certificate{other}}} {
			hs, rd := dial(v.version, c.certs)
			switch v.version {
			case tls.VersionTLS12:
				// crypto/tls's server says "handshake failure" here (other
				// servers "bad certificate" or "certificate required"),
				// which a version or cipher mismatch says too: a refused
				// handshake, an error that stops the client all the same.
				if !config.IsTLSRefused(hs) {
					t.Errorf("%s, %s: the handshake's error %v is not taken for a refusal", v.name, c.name, hs)
				}
			case tls.VersionTLS13:
				if hs != nil || !errors.Is(rd, marker) {
					t.Errorf("%s, %s: handshake %v, read %v; want the read turned into the caller's error", v.name, c.name, hs, rd)
				}
			}
		}
		if hs, rd := dial(v.version, []tls.Certificate{good}); hs != nil || rd != nil {
			t.Errorf("%s with the CA's client certificate: handshake %v, read %v", v.name, hs, rd)
		}
	}
	// A write after the server's close meets a reset while the alert
	// waits unread: the write's error is the refusal too.
	{
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		rc := config.RefusalConn(conn, func(error) error { return marker })
		var werr error
		for deadline := time.Now().Add(10 * time.Second); werr == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			_, werr = rc.Write([]byte("hello"))
		}
		conn.Close()
		if !errors.Is(werr, marker) {
			t.Errorf("TLS 1.3 without a certificate, writing after the server closed: %v; want the caller's refusal", werr)
		}
	}

	// clickhouse-go peeks at an idle pooled connection's socket to drop one
	// the server has closed: the wrapper must lead to the socket. The
	// server closes after its greeting; the peek sees that.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{good}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := config.RefusalConn(conn, func(err error) error { return err })
	if _, err := io.ReadFull(rc, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	sc, ok := rc.(syscall.Conn)
	if !ok {
		t.Fatal("RefusalConn hides the socket (no SyscallConn)")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	for deadline := time.Now().Add(10 * time.Second); !closed && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		raw.Read(func(fd uintptr) bool {
			n, err := syscall.Read(int(fd), make([]byte, 1))
			closed = n > 0 || n == 0 && err == nil // a close_notify, or the end
			return true
		})
	}
	if !closed {
		t.Error("a peek at the socket through RefusalConn never saw the server close")
	}

	for _, err := range []error{io.EOF, &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}} {
		if config.IsClientCertRefused(err) {
			t.Errorf("%v is taken for a refused certificate", err)
		}
	}
}
