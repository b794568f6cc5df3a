//go:build cuda

package cgo

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// TestProbeNeverCrashes holds on every machine: with no GPU or driver the probe reports
// why, in the "no CUDA device: ..." form the CLI prints, and auto falls back to the CPU.
func TestProbeNeverCrashes(t *testing.T) {
	n, err := backend.CUDADevices()
	b, fallback, oerr := backend.Open("auto")
	require.NoError(t, oerr)
	defer b.Close()
	if err != nil {
		require.Zero(t, n)
		require.Contains(t, err.Error(), "no CUDA device")
		require.Equal(t, "cpu", b.Info().Kind)
		require.Contains(t, fallback, "no CUDA device")
		_, _, cerr := backend.Open("cuda:0")
		require.Error(t, cerr)
		t.Logf("no GPU here: %v", err)
		return
	}
	require.Positive(t, n)
	require.Equal(t, "cuda", b.Info().Kind, "fallback: %s", fallback)
	_, _, cerr := backend.Open(fmt.Sprintf("cuda:%d", n))
	require.ErrorContains(t, cerr, "no CUDA device")
}

func TestDeviceInfo(t *testing.T) {
	g := gpu(t)
	info := g.Info()
	t.Logf("device: %+v", info)
	require.NotEmpty(t, info.Name)
	require.Positive(t, info.SMs)
	require.GreaterOrEqual(t, info.CCMajor, 8)
	require.Greater(t, info.MemoryBytes, uint64(1<<30))
	require.Greater(t, info.MemBandwidthGBs, 100.0, "bandwidth from memory clock and bus width")
	free, total, err := MemInfo(g.dev)
	require.NoError(t, err)
	require.LessOrEqual(t, free, total)
	require.NoError(t, CheckDevice(g.dev))
}

func TestBuffersStreamsEvents(t *testing.T) {
	g := gpu(t)
	src := make([]byte, 1<<20+3)
	for i := range src {
		src[i] = byte(i*7 + 1)
	}
	buf, err := Alloc(g.dev, len(src)+16)
	require.NoError(t, err)
	require.NoError(t, buf.Memset(0, buf.Size(), 0xAB))
	require.NoError(t, buf.CopyFromHost(5, src))
	back := make([]byte, len(src)+16)
	require.NoError(t, buf.CopyToHost(back, 0))
	require.Equal(t, bytes.Repeat([]byte{0xAB}, 5), back[:5])
	require.Equal(t, src, back[5:5+len(src)])
	require.Equal(t, bytes.Repeat([]byte{0xAB}, 11), back[5+len(src):])
	// Out of range copies are errors, not crashes.
	require.Error(t, buf.CopyFromHost(buf.Size()-1, src[:2]))
	require.Error(t, buf.CopyToHost(back[:2], -1))

	// Pinned memory and asynchronous copies on a stream, timed with events.
	st, err := NewStream(g.dev)
	require.NoError(t, err)
	pin, err := AllocPinned(g.dev, len(src))
	require.NoError(t, err)
	copy(pin.Bytes(), src)
	dst, err := AllocPinned(g.dev, len(src))
	require.NoError(t, err)
	e0, err := NewEvent(g.dev)
	require.NoError(t, err)
	e1, err := NewEvent(g.dev)
	require.NoError(t, err)
	require.NoError(t, e0.Record(st))
	require.NoError(t, buf.CopyFromPinnedAsync(st, 0, pin, 0, len(src)))
	require.NoError(t, buf.CopyToPinnedAsync(st, dst, 0, 0, len(src)))
	require.NoError(t, e1.Record(st))
	require.NoError(t, st.Synchronize())
	ms, err := ElapsedMs(e0, e1)
	require.NoError(t, err)
	require.Greater(t, ms, 0.0)
	require.Equal(t, src, dst.Bytes())

	view, err := buf.View(8, 16)
	require.NoError(t, err)
	require.NoError(t, view.Close()) // frees nothing
	require.NoError(t, buf.CopyToHost(back[:4], 0), "buffer still usable after closing a view")

	for _, c := range []interface{ Close() error }{e0, e1, pin, dst, st, buf} {
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "second Close is a no-op")
	}
	require.Error(t, buf.CopyToHost(back[:1], 0), "closed buffer")
}

// TestErrorsNameOperation: out of memory says what was asked and what is free; kernel
// argument errors name the operation; nothing panics.
func TestErrorsNameOperation(t *testing.T) {
	g := gpu(t)
	_, err := Alloc(g.dev, 1<<50)
	require.Error(t, err)
	require.True(t, IsOutOfMemory(err), "%v", err)
	require.Contains(t, err.Error(), "1125899906842624 bytes")
	require.Contains(t, err.Error(), "bytes free")
	t.Logf("OOM message: %v", err)

	buf, err := Alloc(g.dev, 64)
	require.NoError(t, err)
	defer buf.Close()
	err = ComputeParamsDev(g.dev, quant.Scheme{Bits: 9, Symmetric: true}, buf, buf, 4, buf, nil) // widths are 3 to 8
	require.ErrorContains(t, err, "autoq_compute_params")
	err = GroupRangesDev(Matrix{Buf: buf, DType: 2, Rows: 4, Cols: 1 << 20}, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, buf, buf, buf)
	require.ErrorContains(t, err, "needs")
	// The device still works after the errors.
	b2, err := Alloc(g.dev, 16)
	require.NoError(t, err)
	require.NoError(t, b2.Close())
	require.NoError(t, Synchronize(g.dev))
}
