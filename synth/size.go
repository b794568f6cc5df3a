package synth

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a byte count as transformers' max_shard_size spells it: a number with an
// optional unit, decimal (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB), case-insensitive;
// a bare number is bytes. "2GB" is 2,000,000,000.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v > 0) || v*mult > 1<<62 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes with an optional unit (500MB, 2GB, 1GiB)", s)
	}
	return int64(v * mult), nil
}
