package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Certs are one test's TLS files, PEM: a CA, a server certificate it
// signed for 127.0.0.1 and localhost with its key, a client certificate
// with its key, and OtherCA, a CA that signed only OtherClientCert: a
// client trusting only OtherCA refuses the server ("certificate signed by
// unknown authority"), and a server that requires client certificates of
// CA refuses OtherClientCert.
type Certs struct {
	Dir                             string
	CA, OtherCA                     string
	ServerCert, ServerKey           string
	ClientCert, ClientKey           string
	OtherClientCert, OtherClientKey string
}

// MakeCerts writes a fresh set of Certs in a temporary folder.
func MakeCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{Dir: dir}
	ca, caKey := makeCA(t, "skuflow test CA")
	c.CA = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	other, otherKey := makeCA(t, "some other CA")
	c.OtherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	c.OtherClientCert, c.OtherClientKey = makeLeaf(t, dir, "other-client", other, otherKey, x509.ExtKeyUsageClientAuth)
	c.ServerCert, c.ServerKey = makeLeaf(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey = makeLeaf(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func makeCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func makeLeaf(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "skuflow test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// SecureBroker starts cmd/broker requiring SASL with mechanism, user and
// password over TLS with c's server certificate. The password reaches the
// broker through its environment, as SKUFLOW_KAFKA_SASL_PASSWORD.
func SecureBroker(t testing.TB, c *Certs, mechanism, user, password string, opts ...BrokerOption) *BrokerProcess {
	t.Helper()
	env := append(BrokerKafkaEnv(c.CA, mechanism, user, password),
		"SKUFLOW_BROKER_SASL=true",
		"SKUFLOW_BROKER_TLS_ENABLED=true",
		"SKUFLOW_BROKER_TLS_CERT_FILE="+c.ServerCert,
		"SKUFLOW_BROKER_TLS_KEY_FILE="+c.ServerKey,
	)
	return Broker(t, append([]BrokerOption{BrokerEnv(env...)}, opts...)...)
}

// BrokerKafkaEnv is the environment of a Kafka client of a SecureBroker:
// TLS trusting caFile, SASL with mechanism, user and password.
func BrokerKafkaEnv(caFile, mechanism, user, password string) []string {
	return []string{
		"SKUFLOW_KAFKA_TLS_ENABLED=true",
		"SKUFLOW_KAFKA_TLS_CA_FILE=" + caFile,
		"SKUFLOW_KAFKA_SASL_MECHANISM=" + mechanism,
		"SKUFLOW_KAFKA_SASL_USERNAME=" + user,
		"SKUFLOW_KAFKA_SASL_PASSWORD=" + password,
	}
}

// SecureClickHouse starts a ClickHouse server for t that also listens on
// a secure native port (tcp_port_secure, TLS with c's server
// certificate), returned as tlsAddr, and has a user with a password
// beside the passwordless default (which the test's clickhouse-client
// keeps using on the plain port, to check results).
func SecureClickHouse(t testing.TB, c *Certs, user, password string) (s *ClickHouseServer, tlsAddr string) {
	t.Helper()
	// Clients are not asked for a certificate: the password is the
	// credential here.
	return secureClickHouse(t, c, user, password, "--openSSL.server.verificationMode=none")
}

// MutualTLSClickHouse is SecureClickHouse whose secure port also requires
// a client certificate c.CA signed.
func MutualTLSClickHouse(t testing.TB, c *Certs, user, password string) (s *ClickHouseServer, tlsAddr string) {
	t.Helper()
	return secureClickHouse(t, c, user, password, "--openSSL.server.verificationMode=strict", "--openSSL.server.caConfig="+c.CA)
}

func secureClickHouse(t testing.TB, c *Certs, user, password string, verify ...string) (s *ClickHouseServer, tlsAddr string) {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users.xml")
	body := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4294967296</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <%[1]s>
            <password>%[2]s</password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </%[1]s>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`, user, password)
	if err := os.WriteFile(users, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	securePort := FreePort(t)
	cfg := filepath.Join(RepoRoot(t), "deploy", "clickhouse", "config.xml")
	s = newClickHouse(t, cfg, dir, FreePort(t), FreePort(t), append([]string{
		"--users_config=" + users,
		"--tcp_port_secure=" + strconv.Itoa(securePort),
		"--openSSL.server.certificateFile=" + c.ServerCert,
		"--openSSL.server.privateKeyFile=" + c.ServerKey,
		"--openSSL.server.loadDefaultCAFile=false",
	}, verify...)...)
	s.Start(t)
	return s, net.JoinHostPort("127.0.0.1", strconv.Itoa(securePort))
}
