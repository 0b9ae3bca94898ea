package producer

import (
	"fmt"

	"skuflow/schemas"
)

// Record is one record framed and decoded by a Reader.
//
// Every slice in it points into the reader's buffers and is valid only until
// the reader's next call: copy what must outlive it.
type Record struct {
	// JSON is the record as one compact JSON object (no white space outside
	// strings, members in input order). This is the value put on the topic.
	JSON []byte
	// Fields are the record's top-level members, in input order.
	Fields []schemas.Field
	// Line is the 1-based line of the input on which the record starts.
	Line int64
	// Offset is the byte offset of the record's start in the decoded
	// (decompressed) input.
	Offset int64
	// Raw is the record's input bytes when they are not JSON (a CSV row,
	// without its line end), nil otherwise: what a rejection keeps, so
	// that the row can be written out again as it was.
	Raw []byte
}

// Reader frames and decodes the records of one input stream.
//
// Next returns the next record. When the reader could frame a record but not
// use it (a JSON value that is not an object, a CSV row with too many
// fields, a line of NDJSON that does not parse) it returns a *RecordError and
// can be called again: the rest of the input goes on. At the end of the input
// it returns io.EOF. Any other error (a *SyntaxError that leaves the framing
// lost, an I/O error) ends the input.
type Reader interface {
	Next() (*Record, error)
}

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// MaxRecordBytes bounds one record's size in the input. A longer record
	// is rejected (NDJSON, CSV) or ends the input (JSON), so that memory
	// stays bounded whatever the input holds.
	MaxRecordBytes int
	// KeyFields are the schema's key fields. The JSON reader uses them to
	// tell a lone record that has an array member from a wrapper object
	// holding the array of records: see NewJSONReader.
	KeyFields []string
}

// DefaultMaxRecordBytes is the record size bound when ReaderOptions leaves it
// zero: well above any real product record, small enough that a reader's
// memory stays a few MB.
const DefaultMaxRecordBytes = 1 << 20

// RecordError is one record the reader framed but could not use.
type RecordError struct {
	Line   int64  // 1-based line on which the record starts
	Offset int64  // byte offset of the record's start in the decoded input
	Reason string // what is wrong, for a person
	Raw    []byte // the record's input bytes, possibly truncated; valid until the next call
	// Size is the record's full size in the input when Raw holds only its
	// first bytes (a row or line longer than MaxRecordBytes); 0 when Raw
	// is the whole record.
	Size int64
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// SyntaxError is input the reader cannot frame: the rest of the input cannot
// be read as records.
type SyntaxError struct {
	Line   int64 // 1-based line
	Column int64 // 1-based column, in bytes
	Offset int64 // byte offset in the decoded input
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d (byte %d): %s", e.Line, e.Column, e.Offset, e.Msg)
}
