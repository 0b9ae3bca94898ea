package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"

	"skuflow/config"
)

// NewClient is the one way skuflow makes a Kafka client: the brokers, the
// dial timeout, TLS and SASL of c, the logger, then opts (a consumer
// group, a producer's settings). Every client of the project comes from
// here (TestOneClientBuilder holds the source to it), so none can miss the
// security settings.
func NewClient(c config.Kafka, log *slog.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := clientOptions(c, log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// clientOptions returns the options every skuflow client starts from.
func clientOptions(c config.Kafka, logger *slog.Logger) ([]kgo.Opt, error) {
	tlsCfg, err := c.TLS.ClientConfig("kafka.tls")
	if err != nil {
		return nil, err
	}
	w := &authWatch{user: c.SASL.Username, mechanism: strings.ToUpper(c.SASL.Mechanism), trust: c.TLS.Trust(),
		cert: c.TLS.CertFile, failed: map[string]int{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.Dialer(w.dialer(&net.Dialer{Timeout: c.DialTimeout}, tlsCfg)),
		kgo.WithHooks(w),
	}
	if m := mechanism(c.SASL); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(kslog.New(logger)))
	}
	return opts, nil
}

func mechanism(s config.SASL) sasl.Mechanism {
	user, pass := s.Username, string(s.Password)
	switch strings.ToUpper(s.Mechanism) {
	case config.SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case config.SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case config.SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// AuthError is a broker refusing who we are, or us refusing the broker: a
// SASL authentication that failed, or a certificate that did not verify.
// Retrying cannot help, so the services stop with it (Permanent) instead
// of retrying forever. It names the broker, the user or the trusted
// certificates, never a password.
type AuthError struct {
	Broker string
	// What failed, e.g. "SASL SCRAM-SHA-256 authentication failed for user
	// loader" or "TLS: certificate not trusted (ca_file ca.pem)".
	What string
	Err  error
}

func (e *AuthError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s at broker %s", e.What, e.Broker)
	}
	return fmt.Sprintf("%s at broker %s: %v", e.What, e.Broker, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Permanent tells retry.Forever not to retry.
func (e *AuthError) Permanent() bool { return true }

// IsAuthError reports whether err says that credentials or certificates
// are wrong (see AuthError), including a broker's SASL and authorization
// error codes.
func IsAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae) || errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed)
}

// authFailuresToStop is how many SASL exchanges in a row a broker must cut
// short before the client takes it as a refusal: a broker that does not
// answer Kafka's SASL error code (kfake, old brokers) closes the
// connection instead, which once could also be a restart.
const authFailuresToStop = 2

// authWatch turns a broker's refusal of the client's credentials into an
// AuthError. A broker that refuses SASL answers with an error code, which
// franz-go returns as it is; one that closes the connection instead
// (kfake, Kafka before 1.0) leaves franz-go seeing a dropped connection,
// which it retries for as long as a request may take. The hook sees the
// SASLAuthenticate exchange fail; after authFailuresToStop of them in a row,
// the next dial to that broker fails with the AuthError, which franz-go
// does not retry, so the caller hears the reason within seconds.
type authWatch struct {
	user, mechanism, trust string
	cert                   string // kafka.tls.cert_file, for errors

	mu     sync.Mutex
	failed map[string]int // broker address -> SASL exchanges cut short in a row
}

func (w *authWatch) dialer(d *net.Dialer, tlsCfg *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		if err := w.refused(host); err != nil {
			return nil, err
		}
		if tlsCfg == nil {
			return d.DialContext(ctx, network, host)
		}
		cfg := tlsCfg.Clone()
		if cfg.ServerName == "" {
			if h, _, err := net.SplitHostPort(host); err == nil {
				cfg.ServerName = h
			}
		}
		conn, err := (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, network, host)
		if err != nil && config.IsCertError(err) {
			return nil, &AuthError{Broker: host, What: "TLS: the broker's certificate is not trusted by " + w.trust +
				" for server name " + cfg.ServerName, Err: err}
		}
		if err != nil && config.IsClientCertRefused(err) {
			return nil, w.certRefused(host, err)
		}
		if err != nil && config.IsTLSRefused(err) {
			return nil, &AuthError{Broker: host, Err: err,
				What: "TLS handshake refused (does the broker want a client certificate, kafka.tls.cert_file, that its CAs signed?)"}
		}
		if err != nil {
			return nil, err
		}
		return config.RefusalConn(conn, func(err error) error { return w.certRefused(host, err) }), nil
	}
}

func (w *authWatch) certRefused(host string, err error) error {
	what := "TLS: the broker requires a client certificate, and kafka.tls.cert_file and key_file are not set"
	if w.cert != "" {
		what = "TLS: the broker refused the client certificate " + w.cert +
			" (kafka.tls.cert_file): it takes only certificates its CAs signed (a skuflow broker's: broker.tls.client_ca_file)"
	}
	return &AuthError{Broker: host, What: what, Err: err}
}

func (w *authWatch) refused(host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed[host] < authFailuresToStop {
		return nil
	}
	return &AuthError{Broker: host, What: fmt.Sprintf("SASL %s authentication failed for user %q (the broker closed the connection on the credentials)", w.mechanism, w.user)}
}

// OnBrokerE2E implements kgo.HookBrokerE2E: a SASLAuthenticate that
// fails counts against the broker; any request past authentication that
// gets an answer clears the count. (A SCRAM exchange has two steps, the
// first of which succeeds whatever the password.)
func (w *authWatch) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	addr := net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port))
	switch kmsg.Key(key) {
	case kmsg.SASLAuthenticate:
		if e2e.Err() == nil {
			return
		}
		w.mu.Lock()
		w.failed[addr]++
		w.mu.Unlock()
	case kmsg.ApiVersions, kmsg.SASLHandshake:
	default:
		if e2e.Err() == nil {
			w.mu.Lock()
			delete(w.failed, addr)
			w.mu.Unlock()
		}
	}
}
