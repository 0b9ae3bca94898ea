package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "Zq9-config-S3CRET"

// Each bad combination of the security keys is refused, named by its key,
// and no reason carries the password.
func TestSecurityValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Config)
		key  string // "" for valid
	}{
		{"scram with user and password", func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: secret}
		}, ""},
		{"mechanism in lower case", func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: "scram-sha-256", Username: "u", Password: secret}
		}, ""},
		{"unknown mechanism", func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: "GSSAPI", Username: "u", Password: secret}
		}, "kafka.sasl.mechanism"},
		{"user without mechanism", func(c *Config) { c.Kafka.SASL = SASL{Username: "u", Password: secret} }, "kafka.sasl.mechanism"},
		{"mechanism without user", func(c *Config) { c.Kafka.SASL = SASL{Mechanism: "PLAIN", Password: secret} }, "kafka.sasl.username"},
		{"mechanism without password", func(c *Config) { c.Kafka.SASL = SASL{Mechanism: "SCRAM-SHA-256", Username: "u"} }, "kafka.sasl.password"},
		{"password and password_file", func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: "SCRAM-SHA-256", Username: "u", Password: secret, PasswordFile: "/p"}
		}, "kafka.sasl.password_file"},
		{"PLAIN in clear beyond loopback", func(c *Config) {
			c.Kafka.Brokers = []string{"kafka.example.com:9092"}
			c.Kafka.SASL = SASL{Mechanism: "PLAIN", Username: "u", Password: secret}
		}, "kafka.sasl.mechanism"},
		{"PLAIN inside TLS beyond loopback", func(c *Config) {
			c.Kafka.Brokers = []string{"kafka.example.com:9092"}
			c.Kafka.SASL = SASL{Mechanism: "PLAIN", Username: "u", Password: secret}
			c.Kafka.TLS = TLS{Enabled: true}
		}, ""},
		{"kafka cert without key", func(c *Config) { c.Kafka.TLS = TLS{Enabled: true, CertFile: "c.pem"} }, "kafka.tls.cert_file"},
		{"kafka key without cert", func(c *Config) { c.Kafka.TLS = TLS{Enabled: true, KeyFile: "k.pem"} }, "kafka.tls.cert_file"},
		{"kafka ca while TLS is off", func(c *Config) { c.Kafka.TLS = TLS{CAFile: "ca.pem"} }, "kafka.tls.ca_file"},
		{"clickhouse cert without key", func(c *Config) { c.ClickHouse.TLS = TLS{Enabled: true, CertFile: "c.pem"} }, "clickhouse.tls.cert_file"},
		{"clickhouse server name while TLS is off", func(c *Config) { c.ClickHouse.TLS = TLS{ServerName: "ch"} }, "clickhouse.tls.server_name"},
		{"clickhouse password and password_file", func(c *Config) {
			c.ClickHouse.Password, c.ClickHouse.PasswordFile = secret, "/p"
		}, "clickhouse.password_file"},
		{"broker sasl without kafka.sasl", func(c *Config) { c.Broker.SASL = true }, "broker.sasl"},
		{"broker tls without certificate", func(c *Config) { c.Broker.TLS.Enabled = true }, "broker.tls.cert_file"},
	} {
		cfg := Default()
		c.set(&cfg)
		err := cfg.Validate()
		if c.key == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		if !IsKeyError(err, c.key) {
			t.Errorf("%s: got %v, want an error naming %s", c.name, err, c.key)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the password is in the error: %v", c.name, err)
		}
	}
}

// A password file is read at load (its final newline dropped); a missing
// one is named by key and path; the environment sets a password too.
func TestPasswordFiles(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "kafka.pass")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	t.Setenv("SKUFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
	t.Setenv("SKUFLOW_KAFKA_SASL_USERNAME", "loader")
	t.Setenv("SKUFLOW_KAFKA_SASL_PASSWORD_FILE", file)
	t.Setenv("SKUFLOW_CLICKHOUSE_PASSWORD", secret+"-ch")
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Kafka.SASL.Password) != secret || string(c.ClickHouse.Password) != secret+"-ch" {
		t.Fatalf("passwords not read: %d and %d bytes", len(c.Kafka.SASL.Password), len(c.ClickHouse.Password))
	}

	t.Setenv("SKUFLOW_KAFKA_SASL_PASSWORD_FILE", filepath.Join(dir, "missing"))
	_, err = Load(Options{})
	if !IsKeyError(err, "kafka.sasl.password_file") || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Fatalf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	t.Setenv("SKUFLOW_KAFKA_SASL_PASSWORD_FILE", empty)
	if _, err = Load(Options{}); !IsKeyError(err, "kafka.sasl.password_file") {
		t.Fatalf("empty file: %v", err)
	}
}

// However a configuration is printed (fmt, slog, JSON), its passwords
// show as [redacted].
func TestSecretsDoNotPrint(t *testing.T) {
	c := Default()
	c.Kafka.SASL = SASL{Mechanism: "PLAIN", Username: "u", Password: secret}
	c.ClickHouse.Password = secret
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "kafka", c.Kafka, "password", c.ClickHouse.Password)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "password", c.Kafka.SASL.Password, "sasl", c.Kafka.SASL)
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c.ClickHouse.Password), logs.String(), string(j)} {
		if strings.Contains(out, secret) {
			t.Errorf("secret printed: %s", out)
		}
	}
	if !strings.Contains(string(j), redacted) {
		t.Errorf("JSON does not show the redaction: %s", j)
	}
}
