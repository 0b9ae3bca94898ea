// Package producer turns input files into records on the keyed topic.
//
// A push opens a source (file, directory entry, stdin or URL), decompresses
// it on the fly (gzip, zstd), finds its format (from the name, then from the
// first bytes), frames and decodes records with a streaming Reader, validates
// each against the schema, and produces it keyed by the schema's key with
// franz-go's idempotent producer, so that one key's records keep their file
// order on the topic. Memory is bounded: readers hold at most one record
// beyond their buffer, and the producer holds at most a configured number of
// unacknowledged records.
package producer
