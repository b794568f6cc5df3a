package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
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

// valueType returns the GGUF type of v, and for arrays the element type.
func valueType(v any) (t, elem ValueType, err error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, nil
	case int8:
		return TypeInt8, 0, nil
	case uint16:
		return TypeUint16, 0, nil
	case int16:
		return TypeInt16, 0, nil
	case uint32:
		return TypeUint32, 0, nil
	case int32:
		return TypeInt32, 0, nil
	case float32:
		return TypeFloat32, 0, nil
	case bool:
		return TypeBool, 0, nil
	case string:
		return TypeString, 0, nil
	case uint64:
		return TypeUint64, 0, nil
	case int64:
		return TypeInt64, 0, nil
	case float64:
		return TypeFloat64, 0, nil
	case []uint8:
		return TypeArray, TypeUint8, nil
	case []int8:
		return TypeArray, TypeInt8, nil
	case []uint16:
		return TypeArray, TypeUint16, nil
	case []int16:
		return TypeArray, TypeInt16, nil
	case []uint32:
		return TypeArray, TypeUint32, nil
	case []int32:
		return TypeArray, TypeInt32, nil
	case []float32:
		return TypeArray, TypeFloat32, nil
	case []bool:
		return TypeArray, TypeBool, nil
	case []string:
		return TypeArray, TypeString, nil
	case []uint64:
		return TypeArray, TypeUint64, nil
	case []int64:
		return TypeArray, TypeInt64, nil
	case []float64:
		return TypeArray, TypeFloat64, nil
	}
	return 0, 0, fmt.Errorf("unsupported metadata value of Go type %T", v)
}

var le = binary.LittleEndian

func appendString(b []byte, s string) []byte {
	b = le.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v (type tag included) after b.
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
	case uint8:
		b = append(b, x)
	case int8:
		b = append(b, byte(x))
	case uint16:
		b = le.AppendUint16(b, x)
	case int16:
		b = le.AppendUint16(b, uint16(x))
	case uint32:
		b = le.AppendUint32(b, x)
	case int32:
		b = le.AppendUint32(b, uint32(x))
	case float32:
		b = le.AppendUint32(b, math.Float32bits(x))
	case bool:
		b = append(b, boolByte(x))
	case string:
		b = appendString(b, x)
	case uint64:
		b = le.AppendUint64(b, x)
	case int64:
		b = le.AppendUint64(b, uint64(x))
	case float64:
		b = le.AppendUint64(b, math.Float64bits(x))
	case []uint8:
		b = appendArray(b, x, func(b []byte, e uint8) []byte { return append(b, e) })
	case []int8:
		b = appendArray(b, x, func(b []byte, e int8) []byte { return append(b, byte(e)) })
	case []uint16:
		b = appendArray(b, x, le.AppendUint16)
	case []int16:
		b = appendArray(b, x, func(b []byte, e int16) []byte { return le.AppendUint16(b, uint16(e)) })
	case []uint32:
		b = appendArray(b, x, le.AppendUint32)
	case []int32:
		b = appendArray(b, x, func(b []byte, e int32) []byte { return le.AppendUint32(b, uint32(e)) })
	case []float32:
		b = appendArray(b, x, func(b []byte, e float32) []byte { return le.AppendUint32(b, math.Float32bits(e)) })
	case []bool:
		b = appendArray(b, x, func(b []byte, e bool) []byte { return append(b, boolByte(e)) })
	case []string:
		b = appendArray(b, x, appendString)
	case []uint64:
		b = appendArray(b, x, le.AppendUint64)
	case []int64:
		b = appendArray(b, x, func(b []byte, e int64) []byte { return le.AppendUint64(b, uint64(e)) })
	case []float64:
		b = appendArray(b, x, func(b []byte, e float64) []byte { return le.AppendUint64(b, math.Float64bits(e)) })
	}
	return b, nil
}

func appendArray[T any](b []byte, xs []T, put func([]byte, T) []byte) []byte {
	b = le.AppendUint64(b, uint64(len(xs)))
	for _, x := range xs {
		b = put(b, x)
	}
	return b
}

func boolByte(x bool) byte {
	if x {
		return 1
	}
	return 0
}
