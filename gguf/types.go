package gguf

import "fmt"

// Type is a ggml tensor type (enum ggml_type): how a tensor's elements are stored.
type Type uint32

// The ggml types this package knows. Numbers are ggml's and appear in files; gaps are
// types ggml has removed.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// QK is the block size of the legacy formats (Q4_0 ... Q8_0); QKK the super-block size of
// the k-quants.
const (
	QK  = 32
	QKK = 256
)

type typeInfo struct {
	name  string
	block int // elements per block
	bytes int // bytes per block
}

// typeInfos holds ggml's block size and block bytes (ggml's type_traits). The llama.cpp
// check (package llamacpp) compares this table with the library's own.
var typeInfos = map[Type]typeInfo{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66}, IQ2_XS: {"IQ2_XS", 256, 74}, IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S: {"IQ1_S", 256, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", 256, 110},
	IQ2_S: {"IQ2_S", 256, 82}, IQ4_XS: {"IQ4_XS", 256, 136}, IQ1_M: {"IQ1_M", 256, 56},
	TQ1_0: {"TQ1_0", 256, 54}, TQ2_0: {"TQ2_0", 256, 66}, MXFP4: {"MXFP4", 32, 17},
}

// Known reports whether t is a type this package can size (read and check).
func (t Type) Known() bool { _, ok := typeInfos[t]; return ok }

func (t Type) String() string {
	if ti, ok := typeInfos[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// ParseType accepts a type name such as "Q4_K" or "f16" (case-insensitive).
func ParseType(s string) (Type, error) {
	for t, ti := range typeInfos {
		if equalFold(ti.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// BlockSize is the number of elements per block (1 for plain types); 0 if unknown.
func (t Type) BlockSize() int { return typeInfos[t].block }

// BlockBytes is the size of one block in bytes; 0 if unknown.
func (t Type) BlockBytes() int { return typeInfos[t].bytes }

// RowBytes is the storage of a row of n elements. n must be a positive multiple of the
// block size.
func (t Type) RowBytes(n int) (int, error) {
	ti, ok := typeInfos[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n <= 0 || n%ti.block != 0 {
		return 0, fmt.Errorf("a row of %d elements is not a positive multiple of %s's block size %d", n, t, ti.block)
	}
	return n / ti.block * ti.bytes, nil
}

// Quantizable reports whether this package can encode t from levels or float32: the full
// precision types F32, F16, BF16 and the block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K
// and Q6_K.
func (t Type) Quantizable() bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K:
		return true
	}
	return false
}

// FileType is llama.cpp's general.file_type (enum llama_ftype) for a model whose weight
// matrices are mostly t.
func FileType(t Type) (uint32, error) {
	switch t {
	case F32:
		return 0, nil
	case F16:
		return 1, nil
	case Q4_0:
		return 2, nil
	case Q4_1:
		return 3, nil
	case Q8_0:
		return 7, nil
	case Q5_0:
		return 8, nil
	case Q5_1:
		return 9, nil
	case Q4_K:
		return 14, nil // LLAMA_FTYPE_MOSTLY_Q4_K_S
	case Q6_K:
		return 18, nil
	case BF16:
		return 32, nil
	}
	return 0, fmt.Errorf("gguf: no llama.cpp file type for %s", t)
}
