package safetensors

import (
	"fmt"

	"github.com/autoq/autoq/tensor"
)

// supported maps safetensors dtype names to autoq dtypes.
var supported = map[string]tensor.DType{
	"F32": tensor.F32, "F16": tensor.F16, "BF16": tensor.BF16,
	"I8": tensor.I8, "U8": tensor.U8, "I32": tensor.I32, "I64": tensor.I64,
}

// known lists the safetensors dtypes autoq recognises but does not handle, so that their
// error says "unsupported" rather than "unknown".
var known = map[string]bool{
	"F64": true, "U64": true, "I16": true, "U16": true, "U32": true,
	"BOOL": true, "F8_E4M3": true, "F8_E5M2": true, "F8_E8M0": true, "F4": true, "F6_E2M3": true, "F6_E3M2": true,
}

func parseDType(s string) (tensor.DType, error) {
	if d, ok := supported[s]; ok {
		return d, nil
	}
	if known[s] {
		return tensor.Invalid, fmt.Errorf("unsupported dtype %s (autoq reads F32, F16, BF16, I8, U8, I32, I64)", s)
	}
	return tensor.Invalid, fmt.Errorf("unknown dtype %q", s)
}

// checkWritable reports whether d can be stored in a safetensors file.
func checkWritable(d tensor.DType) error {
	if d == tensor.I4 {
		return fmt.Errorf("dtype I4 has no safetensors spelling: store packed int4 as U8 [rows, (cols+1)/2] (docs/FORMAT.md)")
	}
	for _, v := range supported {
		if v == d {
			return nil
		}
	}
	return fmt.Errorf("unsupported dtype %s", d)
}

// byteSize is the storage size of shape x dtype, or an error when a dimension is negative
// or the product overflows int64 (a hostile header must not wrap around to a small size).
func byteSize(d tensor.DType, shape []int) (int64, error) {
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if s != 0 && n > (1<<62)/int64(s) {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= int64(s)
	}
	return n * int64(d.Bits()/8), nil
}
