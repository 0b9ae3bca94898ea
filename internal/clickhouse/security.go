package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"skuflow/config"
)

// authErrorCodes are ClickHouse exception codes that refuse who we are:
// retrying with the same credentials cannot help.
var authErrorCodes = map[int32]string{
	192: "UNKNOWN_USER",
	193: "WRONG_PASSWORD",
	194: "REQUIRED_PASSWORD",
	195: "IP_ADDRESS_NOT_ALLOWED",
	516: "AUTHENTICATION_FAILED",
}

// CertError is a ClickHouse server whose TLS certificate did not verify,
// that refused the TLS handshake, or that refused our client certificate
// (or wants one). It names the server and what was checked against what.
type CertError struct {
	Addr string
	What string
	Err  error
}

func (e *CertError) Error() string {
	return fmt.Sprintf("ClickHouse at %s: %s: %v", e.Addr, e.What, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// Permanent tells retry.Forever not to retry.
func (e *CertError) Permanent() bool { return true }

// IsAuthError reports whether err is ClickHouse refusing the user or its
// password, or a server certificate that does not verify.
func IsAuthError(err error) bool {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		_, ok := authErrorCodes[ex.Code]
		return ok
	}
	var ce *CertError
	return errors.As(err, &ce)
}

// dialer connects to one server of c, in TLS when tlsCfg is set; the
// server name defaults to the host dialled.
func dialer(c config.ClickHouse, tlsCfg *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.DialTimeout}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if tlsCfg == nil {
			return d.DialContext(ctx, "tcp", addr)
		}
		cfg := tlsCfg.Clone()
		if cfg.ServerName == "" {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = h
			}
		}
		refused := func(err error) error {
			what := "it requires a client certificate, and clickhouse.tls.cert_file and key_file are not set"
			if c.TLS.CertFile != "" {
				what = "it refused the client certificate " + c.TLS.CertFile + " (clickhouse.tls.cert_file): is it signed by a CA the server trusts (openSSL.server.caConfig)?"
			}
			return &CertError{Addr: addr, What: what, Err: err}
		}
		conn, err := (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", addr)
		switch {
		case err == nil:
			return config.RefusalConn(conn, refused), nil
		case config.IsClientCertRefused(err):
			return nil, refused(err)
		case config.IsCertError(err):
			return nil, &CertError{Addr: addr, Err: err,
				What: fmt.Sprintf("its certificate is not trusted by %s (clickhouse.tls) for server name %s", c.TLS.Trust(), cfg.ServerName)}
		case config.IsTLSRefused(err):
			return nil, &CertError{Addr: addr, Err: err,
				What: "TLS handshake refused (is it the secure port, tcp_port_secure? does it want a client certificate, clickhouse.tls.cert_file?)"}
		}
		return nil, err
	}
}
