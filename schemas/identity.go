package schemas

import (
	"fmt"
	"strconv"
)

// IdentityColumns are the key of an Identity schema's table: the SHA-256
// of the file a record came from (lower-case hex, as ingest_jobs keeps
// it) and the byte offset of the record in the file's decoded content.
// The offset rather than the line: two records of a JSON array may share
// a line, never an offset. _line is kept beside them, as for every type.
var IdentityColumns = []Column{
	{Name: "_file_sha256", Type: String, Required: true},
	{Name: "_file_offset", Type: UInt64, Required: true},
}

// IdentityKey appends the Kafka key of the record at offset in the file
// whose content has the given SHA-256 (hex): "<sha256>/<offset>".
func IdentityKey(dst []byte, sha256 string, offset int64) []byte {
	dst = append(dst, sha256...)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, offset, 10)
}

// ParseIdentityKey reads a key IdentityKey wrote. The file part is a slice
// of key.
func ParseIdentityKey(key []byte) (file []byte, offset uint64, err error) {
	const hexLen = 64
	if len(key) < hexLen+2 || key[hexLen] != '/' {
		return nil, 0, fmt.Errorf("key %q is not <sha256>/<offset>, the key of a record whose identity is its source", show(key))
	}
	for _, c := range key[:hexLen] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, 0, fmt.Errorf("key %q: the file's sha256 is not lower-case hex", show(key))
		}
	}
	offset, err = strconv.ParseUint(string(key[hexLen+1:]), 10, 64)
	if err != nil || strconv.FormatUint(offset, 10) != string(key[hexLen+1:]) {
		return nil, 0, fmt.Errorf("key %q: the offset is not a decimal number", show(key))
	}
	return key[:hexLen], offset, nil
}
