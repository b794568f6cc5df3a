package gguf

import (
	"encoding/binary"
	"fmt"
	"reflect"
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
	if t == TypeBool && b[0] > 1 {
		return nil, fmt.Errorf("gguf: %s: key %q: bool byte is %d (want 0 or 1)", c.file, key, b[0])
	}
	v, err := c.fixed(key, t, b, 1)
	if err != nil {
		return nil, err
	}
	return reflect.ValueOf(v).Index(0).Interface(), nil
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
	if et == TypeBool {
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("gguf: %s: key %q: element %d: bool byte is %d (want 0 or 1)", c.file, key, i, b)
			}
		}
	}
	return c.fixed(key, et, raw, int(n))
}

// fixed decodes b, n values of the fixed-size type t, into a slice of t's Go type (goTypes):
// GGUF's little-endian encoding is encoding/binary's.
func (c *cursor) fixed(key string, t ValueType, b []byte, n int) (any, error) {
	s := reflect.MakeSlice(reflect.SliceOf(goTypes[t]), n, n).Interface()
	if _, err := binary.Decode(b, le, s); err != nil {
		return nil, fmt.Errorf("gguf: %s: key %q: %w", c.file, key, err)
	}
	return s, nil
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
