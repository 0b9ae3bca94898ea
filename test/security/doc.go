// Package security holds the end-to-end tests of skuflow against a broker
// that requires SASL over TLS and a ClickHouse reached over TLS with a
// password (internal/testenv.SecureBroker, SecureClickHouse).
package security
