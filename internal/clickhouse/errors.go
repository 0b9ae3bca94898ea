package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxRawBytes bounds the raw record kept in ingest_errors: enough to see
// what is wrong with any real record, not enough for a runaway one to fill
// the table.
const MaxRawBytes = 16 << 10

// ErrorRow is one row of ingest_errors: a record that did not make it into
// its table, and why.
type ErrorRow struct {
	Job    string
	Source string
	Line   int64
	// Stage is where it failed: decode or validate (in the loader), decode
	// or insert (in the processor).
	Stage  string
	Reason string
	// Raw is the record as read; InsertErrors keeps its first MaxRawBytes.
	Raw []byte
	// Size is the record's full size in bytes when Raw holds only its
	// first bytes; 0 means Raw is whole. Read back, it is the raw_size
	// column: 0 only in rows of earlier releases.
	Size int64
	// Topic, Partition and Offset place a record that reached the topic.
	// For one the loader rejected, Topic is empty and Offset is the
	// record's byte offset in the decompressed input.
	Topic     string
	Partition int32
	Offset    int64
}

// InsertErrors writes rows to the database's ingest_errors in one insert.
func InsertErrors(ctx context.Context, conn Conn, db string, rows []ErrorRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf(
		"INSERT INTO %s (job, source, line, stage, reason, raw, topic, partition, offset, at, raw_size)", Table(db, ErrorsTable)))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", ErrorsTable, err)
	}
	now := time.Now()
	for _, e := range rows {
		raw := e.Raw
		if len(raw) > MaxRawBytes {
			raw = raw[:MaxRawBytes]
		}
		size := max(e.Size, int64(len(e.Raw)))
		if err := b.Append(e.Job, e.Source, uint64(max(e.Line, 0)), e.Stage, e.Reason, string(raw), e.Topic,
			uint32(e.Partition), uint64(max(e.Offset, 0)), now, uint64(size)); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append to %s: %w", ErrorsTable, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), ErrorsTable, err)
	}
	return nil
}

// RawTruncated reports whether e.Raw, as read back from ingest_errors,
// holds only the first bytes of its record: such a record cannot be
// written out or pushed again as it was. Rows of earlier releases have no
// size (0): their raw is taken as cut when it fills MaxRawBytes, or when
// the loader rejected the record for its length (an NDJSON line or CSV row
// longer than MaxRecordBytes, of which only the first bytes were kept).
func RawTruncated(e ErrorRow) bool {
	if e.Size > 0 {
		return e.Size > int64(len(e.Raw))
	}
	return len(e.Raw) >= MaxRawBytes ||
		e.Topic == "" && e.Stage == "decode" && strings.Contains(e.Reason, "(MaxRecordBytes)")
}
