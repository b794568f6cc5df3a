package gguf

import (
	"fmt"
	"math"
)

// value reads a value of type t for key.
func (c *cursor) value(key string, t ValueType) (any, error) {
	what := fmt.Sprintf("the value of key %q", key)
	if t == TypeArray {
		et, err := c.u32(fmt.Sprintf("the element type of key %q", key))
		if err != nil {
			return nil, err
		}
		n, err := c.u64(fmt.Sprintf("the length of key %q", key))
		if err != nil {
			return nil, err
		}
		return c.array(key, ValueType(et), n)
	}
	if t.size() == 0 {
		return nil, fmt.Errorf("gguf: %s: key %q: unknown value type %d", c.file, key, uint32(t))
	}
	if t == TypeString {
		return c.str(what)
	}
	b, err := c.bytes(uint64(t.size()), what)
	if err != nil {
		return nil, err
	}
	return scalar(c.file, key, t, b)
}

// scalar decodes a fixed-size scalar.
func scalar(file, key string, t ValueType, b []byte) (any, error) {
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeUint16:
		return le.Uint16(b), nil
	case TypeInt16:
		return int16(le.Uint16(b)), nil
	case TypeUint32:
		return le.Uint32(b), nil
	case TypeInt32:
		return int32(le.Uint32(b)), nil
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case TypeBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("gguf: %s: key %q: bool byte is %d (want 0 or 1)", file, key, b[0])
		}
		return b[0] == 1, nil
	case TypeUint64:
		return le.Uint64(b), nil
	case TypeInt64:
		return int64(le.Uint64(b)), nil
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(b)), nil
	}
	return nil, fmt.Errorf("gguf: %s: key %q: unknown value type %d", file, key, uint32(t))
}

// array reads n elements of type et.
func (c *cursor) array(key string, et ValueType, n uint64) (any, error) {
	if et == TypeArray {
		return nil, fmt.Errorf("gguf: %s: key %q: nested arrays are not supported", c.file, key)
	}
	es := et.size()
	if es == 0 {
		return nil, fmt.Errorf("gguf: %s: key %q: unknown array element type %d", c.file, key, uint32(et))
	}
	if n > uint64(c.size-c.off)/uint64(es) {
		return nil, fmt.Errorf("gguf: %s: truncated: key %q: %d elements of %s cannot fit in the %d bytes left at offset %d", c.file, key, n, et, c.size-c.off, c.off)
	}
	if et == TypeString {
		out := make([]string, n)
		for i := range out {
			s, err := c.str(fmt.Sprintf("element %d of key %q", i, key))
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	raw, err := c.bytes(n*uint64(es), fmt.Sprintf("the %d elements of key %q", n, key))
	if err != nil {
		return nil, err
	}
	switch et {
	case TypeUint8:
		return raw, nil
	case TypeInt8:
		return decodeArray(raw, 1, func(b []byte) int8 { return int8(b[0]) }), nil
	case TypeUint16:
		return decodeArray(raw, 2, le.Uint16), nil
	case TypeInt16:
		return decodeArray(raw, 2, func(b []byte) int16 { return int16(le.Uint16(b)) }), nil
	case TypeUint32:
		return decodeArray(raw, 4, le.Uint32), nil
	case TypeInt32:
		return decodeArray(raw, 4, func(b []byte) int32 { return int32(le.Uint32(b)) }), nil
	case TypeFloat32:
		return decodeArray(raw, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }), nil
	case TypeBool:
		out := make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("gguf: %s: key %q: element %d: bool byte is %d (want 0 or 1)", c.file, key, i, b)
			}
			out[i] = b == 1
		}
		return out, nil
	case TypeUint64:
		return decodeArray(raw, 8, le.Uint64), nil
	case TypeInt64:
		return decodeArray(raw, 8, func(b []byte) int64 { return int64(le.Uint64(b)) }), nil
	case TypeFloat64:
		return decodeArray(raw, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) }), nil
	}
	return nil, fmt.Errorf("gguf: %s: key %q: unknown array element type %d", c.file, key, uint32(et))
}

func decodeArray[T any](raw []byte, size int, get func([]byte) T) []T {
	out := make([]T, len(raw)/size)
	for i := range out {
		out[i] = get(raw[i*size:])
	}
	return out
}

// tensorInfo reads tensor info i and checks its name, shape and type.
func (c *cursor) tensorInfo(i uint64) (TensorInfo, error) {
	name, err := c.str(fmt.Sprintf("the name of tensor %d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	if err := checkTensorName(name); err != nil {
		return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %d: %w", c.file, i, err)
	}
	nd, err := c.u32(fmt.Sprintf("the dimension count of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > MaxDims {
		return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %q: %d dimensions (want 1 to %d)", c.file, name, nd, MaxDims)
	}
	shape := make([]int, nd)
	for d := int(nd) - 1; d >= 0; d-- { // the file holds ne, innermost first
		v, err := c.u64(fmt.Sprintf("dimension %d of tensor %q", int(nd)-1-d, name))
		if err != nil {
			return TensorInfo{}, err
		}
		if v == 0 || v > 1<<40 {
			return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %q: dimension %d is %d (want 1 to 2^40)", c.file, name, int(nd)-1-d, v)
		}
		shape[d] = int(v)
	}
	tt, err := c.u32(fmt.Sprintf("the type of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	typ := Type(tt)
	if !typ.Known() {
		return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %q: unknown tensor type %d", c.file, name, tt)
	}
	size, err := tensorBytes(typ, shape)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %q: %w", c.file, name, err)
	}
	off, err := c.u64(fmt.Sprintf("the data offset of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if off > 1<<62 {
		return TensorInfo{}, fmt.Errorf("gguf: %s: tensor %q: data offset %d is out of range", c.file, name, off)
	}
	return TensorInfo{Name: name, Shape: shape, Type: typ, Offset: int64(off), Size: size}, nil
}
