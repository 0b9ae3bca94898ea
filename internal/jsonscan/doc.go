// Package jsonscan is the strict, one-pass JSON scanner that the loader's
// readers and the processor share: it validates a JSON value (RFC 8259 to
// the letter: number grammar, escapes, control characters, UTF-8), compacts
// a record object and splits it into its top-level members, without
// allocating once its buffers have grown.
//
// The producer's streaming readers drive a Scanner over their buffers and
// ask for more input when a record straddles the end; the processor hands
// Scanner.Object one complete Kafka record value at a time.
package jsonscan
