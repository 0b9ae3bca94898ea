package jsonscan

import (
	"fmt"

	"skuflow/schemas"
)

// SyntaxError is input that is not one valid JSON value.
type SyntaxError struct {
	Offset int // byte offset of the problem in the input
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset)
}

// NotObjectError is input that is one valid JSON value, but not an object.
type NotObjectError struct {
	Kind   string // the value's JSON type, as schemas.Kind names it: "a string", "null", ...
	Offset int    // byte offset of the value's start in the input
}

func (e *NotObjectError) Error() string {
	return "value is " + e.Kind + ", not a JSON object"
}

// Object scans data, which must hold one JSON object and nothing else but
// white space, and returns the object compacted and its top-level members
// in input order (names unescaped, values as compact JSON text), in fields
// when it is large enough. Both point into data or the scanner's buffers
// and are valid until the scanner's next scan. A member that occurs twice is
// returned twice.
//
// Input that is not valid JSON is a *SyntaxError; a valid value that is not
// an object is a *NotObjectError. On error fields is returned as it came.
func (s *Scanner) Object(data []byte, fields []schemas.Field) (js []byte, _ []schemas.Field, err error) {
	i := 0
	for i < len(data) && space[data[i]] {
		i++
	}
	if i == len(data) {
		s.Reset(data, true, false)
		s.EndOf(i, "value")
		return nil, fields, &SyntaxError{Offset: s.errPos, Msg: s.errMsg}
	}
	obj := data[i] == '{'
	s.Reset(data, true, obj)
	var j int
	if obj {
		j = s.Record(i, 0)
	} else {
		j = s.Value(i, 0)
	}
	if j >= 0 {
		k := j
		for k < len(data) && space[data[k]] {
			k++
		}
		if k < len(data) {
			if obj {
				j = s.Bad(k, "after object")
			} else {
				j = s.Bad(k, "after top-level value")
			}
		}
	}
	switch {
	case j < 0:
		return nil, fields, &SyntaxError{Offset: s.errPos, Msg: s.errMsg}
	case !obj:
		return nil, fields, &NotObjectError{Kind: schemas.Kind(data[i:j]), Offset: i}
	}
	js, fields = s.Finish(i, j, fields)
	return js, fields, nil
}
