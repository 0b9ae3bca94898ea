// Package clickhouse connects the services to ClickHouse and keeps its
// tables in shape: migration at start-up (idempotent, additive only), the
// bookkeeping tables every service shares, and the classification of errors
// into "retry later" and "this data cannot go in".
package clickhouse

import (
	"errors"
	"fmt"
	"net"
	"strings"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"skuflow/config"
)

// Conn is a connection pool to ClickHouse.
type Conn = driver.Conn

// Open returns a connection pool for c whose default database is
// "default": the services name every table with its database, and
// "default" exists on every server, before migration has created ours. It
// does not dial: the first query does, so a service can start while
// ClickHouse is still down and retry.
func Open(c config.ClickHouse) (Conn, error) { return OpenDatabase(c, "default") }

// OpenDatabase is Open with another default database, in which unqualified
// table names of queries resolve.
func OpenDatabase(c config.ClickHouse, database string) (Conn, error) {
	tlsCfg, err := c.TLS.ClientConfig("clickhouse.tls")
	if err != nil {
		return nil, err
	}
	var settings ch.Settings
	if c.Cluster != "" {
		// An INSERT into a Distributed table returns once every shard has
		// its rows (see cluster.go), not when they are queued on the
		// server the client reached.
		// (The servers' profile should also set load_balancing to
		// in_order, see cluster.go: 18.16's protocol takes only numbers
		// here.)
		settings = ch.Settings{"insert_distributed_sync": 1}
	}
	conn, err := ch.Open(&ch.Options{
		Settings: settings,
		Addr:     c.Addrs(),
		// The first that answers: a cluster's servers in turn when one is
		// down.
		ConnOpenStrategy: ch.ConnOpenInOrder,
		Protocol:         ch.Native,
		Auth:             ch.Auth{Database: database, Username: c.Username, Password: string(c.Password)},
		DialTimeout:      c.DialTimeout,
		// Our own dial, plain or TLS, so that a certificate that does not
		// verify is reported with the server and what it was checked
		// against, and stops a service instead of being retried.
		DialContext: dialer(c, tlsCfg),
		Compression: compression(c),
		// A service runs one processor or aggregator per record type. A
		// processor holds up to four connections at once (its open
		// INSERT, two being ended, a write of rejected records), an
		// aggregator two (a write and a state load): 64 serves a dozen
		// types without one waiting for another's connection. They open
		// only when used.
		MaxOpenConns: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}

// compression picks the native protocol's block compression. On loopback
// it saves no time, only CPU on both ends (about 0.3 s of the processor's
// per 500,000 products, measured), so auto turns it off there.
func compression(c config.ClickHouse) *ch.Compression {
	method := c.Compression
	if method == "auto" {
		method = "lz4"
		if host, _, err := net.SplitHostPort(c.Addrs()[0]); err == nil {
			if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
				method = "none"
			}
		}
	}
	switch method {
	case "lz4":
		return &ch.Compression{Method: ch.CompressionLZ4}
	case "zstd":
		return &ch.Compression{Method: ch.CompressionZSTD}
	}
	return nil
}

// dataErrorCodes are ClickHouse exception codes that say the rows, not the
// server, are at fault: retrying the same rows cannot help, and splitting
// the batch finds the rows to set aside.
var dataErrorCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	32:  "ATTEMPT_TO_READ_AFTER_EOF",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
	469: "VIOLATED_CONSTRAINT",
}

// IsDataError reports whether err says that the inserted rows themselves
// are unacceptable. Anything else (network, server overload, a table being
// altered) is worth retrying as it is.
func IsDataError(err error) bool {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		_, ok := dataErrorCodes[ex.Code]
		return ok
	}
	return false
}

// Retriable says whether retrying may help, for retry.Forever: not for a
// data error, nor for credentials or a certificate that are refused
// (IsAuthError), which stop a service at start with the reason.
func Retriable(err error) bool { return !IsDataError(err) && !IsAuthError(err) }

// Quote returns s as a ClickHouse string literal.
func Quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
