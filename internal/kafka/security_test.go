package kafka_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/internal/testenv"
)

const secret = "Zq9-kafka-S3CRET-5v1w" // distinctive: found anywhere, it leaked

// secureCluster starts kfake requiring SASL (user "loader" with secret,
// by mechanism) over TLS with certs' server certificate.
func secureCluster(t *testing.T, certs *testenv.Certs, mechanism string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mechanism, "loader", secret),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func secureConfig(addr string, certs *testenv.Certs, mechanism, password string) config.Kafka {
	c := config.Default().Kafka
	c.Brokers = []string{addr}
	c.Topic, c.Partitions = "secured", 3
	c.TLS = config.TLS{Enabled: true, CAFile: certs.CA}
	c.SASL = config.SASL{Mechanism: mechanism, Username: "loader", Password: config.Secret(password)}
	return c
}

// Every mechanism, over TLS, with the right password: the topic is made.
func TestSecureClientMechanisms(t *testing.T) {
	certs := testenv.MakeCerts(t)
	for _, m := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(m, func(t *testing.T) {
			addr := secureCluster(t, certs, m)
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := kafka.Prepare(ctx, secureConfig(addr, certs, m, secret), log, retry.Default)
			if err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			if st.Partitions != 3 {
				t.Fatalf("partitions %d", st.Partitions)
			}
			if strings.Contains(logs.String(), secret) {
				t.Fatalf("the password is in the client's debug log")
			}
		})
	}
}

// A wrong password, an untrusted certificate, a server name the
// certificate does not have: each stops Prepare (which retries a broker
// that is down forever) within seconds, with an error that says what is
// wrong and where, and never the password.
func TestSecureClientRefusalsFailFast(t *testing.T) {
	certs := testenv.MakeCerts(t)
	addr := secureCluster(t, certs, config.SASLScramSHA256)
	wrong := "not-the-" + secret
	cases := []struct {
		name string
		cfg  func(config.Kafka) config.Kafka
		want []string
	}{
		{"wrong password", func(c config.Kafka) config.Kafka { c.SASL.Password = config.Secret(wrong); return c },
			[]string{"SASL SCRAM-SHA-256 authentication failed", `user "loader"`, addr}},
		{"unknown user", func(c config.Kafka) config.Kafka { c.SASL.Username = "nobody"; return c },
			[]string{"authentication failed", `user "nobody"`, addr}},
		{"untrusted certificate", func(c config.Kafka) config.Kafka { c.TLS.CAFile = certs.OtherCA; return c },
			[]string{"certificate signed by unknown authority", "ca_file " + certs.OtherCA, addr}},
		{"wrong server name", func(c config.Kafka) config.Kafka { c.TLS.ServerName = "kafka.example.com"; return c },
			[]string{"not trusted", "kafka.example.com", addr}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			began := time.Now()
			_, err := kafka.Prepare(ctx, c.cfg(secureConfig(addr, certs, config.SASLScramSHA256, secret)), log, retry.Default)
			took := time.Since(began)
			t.Logf("%s after %s: %v", c.name, took.Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("no error")
			}
			if took > 15*time.Second {
				t.Errorf("took %s: not fast", took)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q", w)
				}
			}
			if !kafka.IsAuthError(err) {
				t.Errorf("not an auth error: %T", err)
			}
			for _, s := range []string{secret, wrong} {
				if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
					t.Errorf("a password is in the error or the log")
				}
			}
		})
	}
}

// A broker that is down is not a refusal: Prepare waits for it.
func TestBrokerDownIsRetried(t *testing.T) {
	certs := testenv.MakeCerts(t)
	c := secureConfig("127.0.0.1:1", certs, config.SASLScramSHA256, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := kafka.Prepare(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)), retry.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond})
	if err == nil || kafka.IsAuthError(err) || ctx.Err() == nil {
		t.Fatalf("gave up before the context ended, or called it a refusal: %v", err)
	}
}

// Every Kafka client of the project comes from kafka.NewClient, so none
// misses TLS and SASL: no other non-test source file calls kgo.NewClient
// (or builds a client some other way franz-go offers).
func TestOneClientBuilder(t *testing.T) {
	root := testenv.RepoRoot(t)
	builder := filepath.Join(root, "internal", "kafka", "client.go")
	call := regexp.MustCompile(`\bkgo\.NewClient\(|\bkgo\.SeedBrokers\(`)
	found := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "bin") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllIndex(b, -1) {
			if path == builder {
				found++
				continue
			}
			line := 1 + strings.Count(string(b[:m[0]]), "\n")
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s:%d makes a Kafka client without kafka.NewClient: it would miss kafka.tls and kafka.sasl", rel, line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != 2 {
		t.Errorf("the builder itself: %d calls found, want kgo.NewClient and kgo.SeedBrokers once each (has the scan gone blind?)", found)
	}
}
