package quant

import "fmt"

// The small option enums of the quantization packages (Granularity, ActMode, Rounding;
// gptq.Clip, gptq.GroupOrder, collect.Method, collect.Mode, rotate.Kind) each keep their
// names in one table indexed by value (names[v]; "" where a value has none), which their
// String method and their parser both read, so the two cannot drift apart.

// EnumName is a String method: names[v], or "typ(v)" for a value without a name.
func EnumName[T ~uint8](typ string, v T, names []string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, uint8(v))
}

// ParseEnum returns the value that names calls s. An unknown s is an error naming what is
// parsed and the names it wants: `unknown rotation "x" (want hadamard or random)`.
func ParseEnum[T ~uint8](s string, names []string, what, want string) (T, error) {
	for v, n := range names {
		if n != "" && n == s {
			return T(v), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want %s)", what, s, want)
}
