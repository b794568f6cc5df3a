//go:build cuda

package cgo

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/stretchr/testify/require"
)

// gpu opens CUDA device 0 or skips the test, saying why.
func gpu(t *testing.T) *Backend {
	t.Helper()
	n, err := DeviceCount()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (%v): GPU test skipped", err)
	}
	b, err := Open(0)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	// Registered after the Close above, so it runs first (cleanups are LIFO).
	base := settledLeaks()
	t.Cleanup(func() {
		if n := settledLeaks() - base; n != 0 {
			t.Errorf("%d device buffers/streams/events were garbage collected without Close during this test", n)
		}
	})
	return b
}

// settledLeaks collects garbage, lets the finalizers run and returns the leak count.
func settledLeaks() int64 {
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return Leaks()
}

var cpu = backend.NewCPU()

// firstF32Diff returns a description of the first element where got and want differ in
// bits (sameZero: treat +0 and -0 as equal), or "".
func firstF32Diff(got, want []float32, cols int, sameZero bool) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	n := 0
	first := ""
	for i := range got {
		g, w := math.Float32bits(got[i]), math.Float32bits(want[i])
		if g == w || (sameZero && got[i] == 0 && want[i] == 0) {
			continue
		}
		if n == 0 {
			first = fmt.Sprintf("index %d (row %d, col %d): got %g (0x%08x), want %g (0x%08x)", i, i/max(cols, 1), i%max(cols, 1), got[i], g, want[i], w)
		}
		n++
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d differ; first at %s", n, len(got), first)
}

func firstI32Diff(got, want []int32) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("index %d: got %d, want %d", i, got[i], want[i])
		}
	}
	return ""
}

func firstByteDiff(got, want []byte, rowBytes int) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	n, first := 0, ""
	for i := range got {
		if got[i] != want[i] {
			if n == 0 {
				first = fmt.Sprintf("byte %d (row %d, byte %d of row): got 0x%02x, want 0x%02x", i, i/max(rowBytes, 1), i%max(rowBytes, 1), got[i], want[i])
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d bytes differ; first at %s", n, len(got), first)
}
