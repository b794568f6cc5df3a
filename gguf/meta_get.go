package gguf

import "fmt"

// String returns the string value of key, or an error naming the file and key when it is
// missing or of another type.
func (f *File) String(key string) (string, error) { return getAs[string](f, key) }

// Uint32 returns the uint32 value of key (see String).
func (f *File) Uint32(key string) (uint32, error) { return getAs[uint32](f, key) }

// Float32 returns the float32 value of key (see String).
func (f *File) Float32(key string) (float32, error) { return getAs[float32](f, key) }

// Bool returns the bool value of key (see String).
func (f *File) Bool(key string) (bool, error) { return getAs[bool](f, key) }

func getAs[T any](f *File, key string) (T, error) {
	var zero T
	v, ok := f.Get(key)
	if !ok {
		return zero, fmt.Errorf("gguf: %s: key %q: missing", f.Path, key)
	}
	x, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("gguf: %s: key %q: value %v has type %T, want %T", f.Path, key, v, v, zero)
	}
	return x, nil
}
