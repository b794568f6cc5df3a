package gguf

import (
	"encoding/binary"
	"fmt"
	"reflect"
)

// ValueType is a GGUF metadata value type (enum gguf_type).
type ValueType uint32

const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size is the encoded size of a scalar of type t (strings: the length prefix only).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64, TypeString:
		return 8
	}
	return 0
}

// KV is one metadata entry. Value is one of the Go types uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64, float64, or a slice of one of them
// (a GGUF array). Nested arrays are not supported (no model metadata uses them).
type KV struct {
	Key   string
	Value any
}

// goTypes is the Go type of each GGUF value type (TypeArray has none: an array is a slice of
// one of these), grouped by encoded size as in size.
var goTypes = [...]reflect.Type{
	TypeUint8: reflect.TypeFor[uint8](), TypeInt8: reflect.TypeFor[int8](), TypeBool: reflect.TypeFor[bool](),
	TypeUint16: reflect.TypeFor[uint16](), TypeInt16: reflect.TypeFor[int16](),
	TypeUint32: reflect.TypeFor[uint32](), TypeInt32: reflect.TypeFor[int32](), TypeFloat32: reflect.TypeFor[float32](),
	TypeUint64: reflect.TypeFor[uint64](), TypeInt64: reflect.TypeFor[int64](), TypeFloat64: reflect.TypeFor[float64](),
	TypeString: reflect.TypeFor[string](),
}

// valueType returns the GGUF type of v, and for arrays the element type. Only the Go types
// of goTypes and unnamed slices of them are taken (not, say, a named type over uint32).
func valueType(v any) (t, elem ValueType, err error) {
	rt := reflect.TypeOf(v)
	for i, g := range goTypes {
		switch {
		case g == nil:
		case rt == g:
			return ValueType(i), 0, nil
		case rt == reflect.SliceOf(g):
			return TypeArray, ValueType(i), nil
		}
	}
	return 0, 0, fmt.Errorf("unsupported metadata value of Go type %T", v)
}

var le = binary.LittleEndian

func appendString(b []byte, s string) []byte {
	b = le.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v (type tag included) after b. Numbers and bools, single or in arrays,
// are GGUF's little-endian fixed-size encoding, which is encoding/binary's (a bool is one
// byte, 0 or 1); strings carry a uint64 length.
func appendValue(b []byte, v any) ([]byte, error) {
	t, elem, err := valueType(v)
	if err != nil {
		return nil, err
	}
	b = le.AppendUint32(b, uint32(t))
	if t == TypeArray {
		b = le.AppendUint32(b, uint32(elem))
	}
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case []string:
		b = le.AppendUint64(b, uint64(len(x)))
		for _, s := range x {
			b = appendString(b, s)
		}
		return b, nil
	}
	if t == TypeArray {
		b = le.AppendUint64(b, uint64(reflect.ValueOf(v).Len()))
	}
	return binary.Append(b, le, v)
}
