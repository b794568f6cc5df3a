package autoquant

import (
	"fmt"
	"sort"
	"strings"

	"github.com/autoq/autoq/calib"
)

// TRTCacheFile is the name of the TensorRT INT8 calibration cache in an export.
const TRTCacheFile = "trt_int8_calibration.cache"

// TRTOptions are the TensorRT cache settings of the jobs that write one.
type TRTOptions struct {
	// TRTNames is a JSON map from module names (the cache's keys as calibrated) to the
	// network tensor names TensorRT looks scales up by; "" keeps the module names.
	TRTNames string
	// TRTVersion is the version number in the header ("" = calib.DefaultTRTVersion).
	TRTVersion string
}

func (o TRTOptions) version() string {
	if o.TRTVersion == "" {
		return calib.DefaultTRTVersion
	}
	return o.TRTVersion
}

// check validates the options before any work.
func (o TRTOptions) checkTRT() error {
	if _, err := (&calib.TRTCache{Version: o.version()}).Marshal(); err != nil {
		return usagef("--trt-version: %v", err)
	}
	if o.TRTNames != "" {
		if _, err := calib.ReadTRTNames(o.TRTNames); err != nil {
			return usagef("--trt-names: %v", err)
		}
	}
	return nil
}

// trtCacheOf renders activation thresholds as a TensorRT calibration cache (scale
// amax/127 per layer input, names sorted), the format of package calib.
func trtCacheOf(amax map[string]float32, m calib.Method) *calib.TRTCache {
	c := &calib.TRTCache{Version: calib.DefaultTRTVersion, Algorithm: calib.TRTAlgorithm(m)}
	names := make([]string, 0, len(amax))
	for n := range amax {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.Entries = append(c.Entries, calib.TRTEntry{Name: n, Scale: amax[n] / 127})
	}
	return c
}

// render sets the header version and, with a name map, keys the cache by network tensor
// names (one line per tensor, warning about modules the map lacks and merged scales);
// without one it keeps the module names and says how to map them. where names the file.
func (o TRTOptions) render(env Env, c *calib.TRTCache, where string) ([]byte, error) {
	c.Version = o.version()
	if o.TRTNames == "" {
		env.logf("note: %s is keyed by module names, but TensorRT looks scales up by network tensor names and ignores "+
			"keys it does not find: give --trt-names, a JSON map from module to tensor name (`polygraphy inspect model "+
			"model.onnx --show layers` lists the tensors)\n", where)
		return c.Marshal()
	}
	names, err := calib.ReadTRTNames(o.TRTNames)
	if err != nil {
		return nil, err
	}
	out, unmapped, merged := c.Rename(names)
	if len(unmapped) > 0 {
		env.logf("warning: %d of %d cache entries have no network tensor name in %s and are left out of %s: %s\n",
			len(unmapped), len(c.Entries), o.TRTNames, where, strings.Join(unmapped, ", "))
	}
	for _, m := range merged {
		env.logf("warning: %s read one tensor %q but have different scales; %s keeps the largest, %g\n",
			strings.Join(m.Entries, ", "), m.Tensor, where, m.Scale)
	}
	if len(out.Entries) == 0 && len(c.Entries) > 0 {
		return nil, fmt.Errorf("trt names %s: no cache entry has a network tensor name (keys are module names such as %s)", o.TRTNames, c.Entries[0].Name)
	}
	return out.Marshal()
}
