package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Secret is a password. Only the client that sends it reads its value
// (string(s)); every way of printing it (fmt, slog, JSON, YAML) shows
// [redacted] instead, so that a configuration logged or wrapped into an
// error cannot carry it (invariant 7).
type Secret string

const redacted = "[redacted]"

func (s Secret) show() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String hides the secret from fmt's %v and %s.
func (s Secret) String() string { return s.show() }

// GoString hides the secret from fmt's %#v.
func (s Secret) GoString() string { return `"` + s.show() + `"` }

// LogValue hides the secret from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.show()) }

// MarshalText hides the secret from encoders (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.show()), nil }

// SASL is how a Kafka client authenticates. An empty Mechanism means none.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  Secret `mapstructure:"password"`
	// PasswordFile, instead of Password, names a file holding it.
	PasswordFile string `mapstructure:"password_file"`
}

// SASL mechanisms a Kafka client can use (franz-go's pkg/sasl).
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// TLS secures a client's connections: the server's certificate must be
// signed by CAFile (or, when empty, by the system's roots) for ServerName
// (or the host dialled); CertFile and KeyFile, together, are the client's
// own certificate for servers that ask for one.
type TLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CAFile     string `mapstructure:"ca_file"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	ServerName string `mapstructure:"server_name"`
}

// BrokerTLS is the local broker's TLS: its certificate and key, and,
// when ClientCAFile is set, the CA that must sign every client's
// certificate (clients without one are refused).
type BrokerTLS struct {
	Enabled      bool   `mapstructure:"enabled"`
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// ServerConfig returns the broker's tls.Config, or nil when TLS is off.
func (t BrokerTLS) ServerConfig() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, &KeyError{Key: "broker.tls.cert_file", Reason: fmt.Sprintf("certificate %s with key %s: %v", t.CertFile, t.KeyFile, err)}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, &KeyError{Key: "broker.tls.client_ca_file", Reason: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &KeyError{Key: "broker.tls.client_ca_file", Reason: fmt.Sprintf("%s holds no PEM certificate", t.ClientCAFile)}
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// validateSecurity checks the sasl and tls keys of Kafka and ClickHouse.
// It never puts a secret in a reason.
func (c *Config) validateSecurity(bad func(string, string, ...any)) {
	s := c.Kafka.SASL
	switch strings.ToUpper(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			bad("kafka.sasl.mechanism", "must be set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) when kafka.sasl.username or a password is")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			bad("kafka.sasl.username", "must be set with kafka.sasl.mechanism %s", s.Mechanism)
		}
		if s.Password == "" && s.PasswordFile == "" {
			bad("kafka.sasl.password", "kafka.sasl.password or kafka.sasl.password_file must be set with kafka.sasl.mechanism %s", s.Mechanism)
		}
		// PLAIN sends the password as it is: only inside TLS, or to a
		// broker on this machine.
		if strings.EqualFold(s.Mechanism, SASLPlain) && !c.Kafka.TLS.Enabled {
			for _, b := range c.Kafka.Brokers {
				if host, _, err := net.SplitHostPort(b); err == nil && !IsLoopback(host) {
					bad("kafka.sasl.mechanism", "PLAIN sends the password in clear: set kafka.tls.enabled to reach %s, or use SCRAM-SHA-256/512", b)
					break
				}
			}
		}
	default:
		bad("kafka.sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (or empty for none), got %q", s.Mechanism)
	}
	if s.Password != "" && s.PasswordFile != "" {
		bad("kafka.sasl.password_file", "set either kafka.sasl.password or kafka.sasl.password_file, not both")
	}
	if c.ClickHouse.Password != "" && c.ClickHouse.PasswordFile != "" {
		bad("clickhouse.password_file", "set either clickhouse.password or clickhouse.password_file, not both")
	}
	c.Kafka.TLS.validate(bad, "kafka.tls")
	c.ClickHouse.TLS.validate(bad, "clickhouse.tls")
	if c.Broker.SASL && s.Mechanism == "" {
		bad("broker.sasl", "needs kafka.sasl (mechanism, username and a password): that user is the broker's")
	}
	if b := c.Broker.TLS; b.Enabled && (b.CertFile == "" || b.KeyFile == "") {
		bad("broker.tls.cert_file", "broker.tls.cert_file and broker.tls.key_file must both be set when broker.tls.enabled is")
	}
}

func (t TLS) validate(bad func(string, string, ...any), prefix string) {
	if !t.Enabled {
		// A CA or certificate named while TLS is off would leave the
		// connection in clear while the file suggests otherwise.
		for key, v := range map[string]string{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile, "server_name": t.ServerName} {
			if v != "" {
				bad(prefix+"."+key, "is set but %s.enabled is false: enable TLS or remove it", prefix)
			}
		}
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad(prefix+".cert_file", "%s.cert_file and %s.key_file go together: set both (a client certificate) or neither", prefix, prefix)
	}
}

// readSecrets replaces each password_file by the password it holds
// (without a final newline). An error names the key and the file.
func (c *Config) readSecrets() error {
	read := func(key, file string, into *Secret) error {
		if file == "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return &KeyError{Key: key, Reason: fmt.Sprintf("cannot read the password: %v", err)}
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return &KeyError{Key: key, Reason: fmt.Sprintf("%s is empty", file)}
		}
		*into = Secret(p)
		return nil
	}
	return errors.Join(
		read("kafka.sasl.password_file", c.Kafka.SASL.PasswordFile, &c.Kafka.SASL.Password),
		read("clickhouse.password_file", c.ClickHouse.PasswordFile, &c.ClickHouse.Password),
	)
}

// ClientConfig returns the tls.Config of a client, or nil when TLS is off.
// prefix names the keys in errors (kafka.tls, clickhouse.tls).
func (t TLS) ClientConfig(prefix string) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &KeyError{Key: prefix + ".ca_file", Reason: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &KeyError{Key: prefix + ".ca_file", Reason: fmt.Sprintf("%s holds no PEM certificate", t.CAFile)}
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &KeyError{Key: prefix + ".cert_file", Reason: fmt.Sprintf("client certificate %s with key %s: %v", t.CertFile, t.KeyFile, err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Trust says which certificates a TLS client trusts, for error messages:
// the CA file, or the system's roots.
func (t TLS) Trust() string {
	if t.CAFile != "" {
		return "ca_file " + t.CAFile
	}
	return "the system's CA roots (no ca_file)"
}

// IsClientCertRefused reports whether err is the server's TLS alert that
// it refused the client's certificate (or that it wants one). Under TLS
// 1.3 the server checks the client's certificate after the client has
// finished its handshake, so the alert comes with the first read, not
// with the dial. (Under TLS 1.2 servers often say "handshake failure"
// instead: see IsTLSRefused.)
func IsClientCertRefused(err error) bool {
	switch remoteAlert(err) {
	case "certificate required", "bad certificate", "unknown certificate authority", "unsupported certificate",
		"revoked certificate", "expired certificate", "unknown certificate", "access denied":
		return true
	}
	return false
}

// remoteAlert returns the text of the TLS alert the server sent that err
// is ("handshake failure"), or "". crypto/tls's alert type is not exported
// (tls.AlertError is QUIC's): its text is what there is to go by.
func remoteAlert(err error) string {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return ""
	}
	text, ok := strings.CutPrefix(op.Err.Error(), "tls: ")
	if !ok {
		return ""
	}
	return text
}

// RefusalConn returns conn, a TLS connection, with its reads and writes
// turning the server's alert that refuses the client's certificate
// (IsClientCertRefused) into refused(err). Under TLS 1.3 the dial has
// succeeded by then: the alert comes with the first read, and a client
// would take it for a broken connection and retry for ever.
func RefusalConn(conn net.Conn, refused func(error) error) net.Conn {
	return &refusalConn{Conn: conn, refused: refused}
}

type refusalConn struct {
	net.Conn
	refused func(error) error
}

func (c *refusalConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && IsClientCertRefused(err) {
		err = c.refused(err)
	}
	return n, err
}

func (c *refusalConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		// A server that refused the certificate sends its alert and
		// closes: a write that comes after the close meets a reset while
		// the alert waits unread. The connection is over either way.
		if alert := c.pendingAlert(); alert != nil {
			err = alert
		}
	}
	if err != nil && IsClientCertRefused(err) {
		err = c.refused(err)
	}
	return n, err
}

// pendingAlertWait bounds the look for an alert after a failed write.
const pendingAlertWait = 200 * time.Millisecond

// pendingAlert reads what the server sent before it closed, and returns it
// when it is the refusal of the client's certificate.
func (c *refusalConn) pendingAlert() error {
	if c.Conn.SetReadDeadline(time.Now().Add(pendingAlertWait)) != nil {
		return nil
	}
	_, err := c.Conn.Read(make([]byte, 1))
	if IsClientCertRefused(err) {
		return err
	}
	return nil
}

// SyscallConn is the socket's under the TLS: clickhouse-go looks at an
// idle pooled connection's socket (its connCheck) to drop one the server
// has closed, and skips any connection it cannot reach the socket of.
func (c *refusalConn) SyscallConn() (syscall.RawConn, error) {
	conn := c.Conn
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	if s, ok := conn.(syscall.Conn); ok {
		return s.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// IsCertError reports whether err is a certificate that did not verify:
// one the trusted CAs did not sign, for another host, or invalid. The
// Kafka and ClickHouse clients stop on it rather than retry.
func IsCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve)
}

// IsTLSRefused reports whether the server refused the handshake, with an
// alert that waiting cannot change (it wants a client certificate, or
// shares no version or cipher), or does not speak TLS. Alerts that may
// pass ("internal error", "bad record MAC") are not refusals.
func IsTLSRefused(err error) bool {
	var (
		ae tls.AlertError
		rh tls.RecordHeaderError
	)
	if errors.As(err, &ae) || errors.As(err, &rh) || IsClientCertRefused(err) {
		return true
	}
	switch remoteAlert(err) {
	case "handshake failure", "protocol version not supported", "insufficient security level":
		return true
	}
	return false
}
