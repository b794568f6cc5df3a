package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// startMemProfile writes a heap profile taken when the live heap (after a GC) was largest
// during the command to path (AUTOQ_MEMPROFILE; read it with `go tool pprof -sample_index
// inuse_space autoq PATH`): the peak of a long pipeline is somewhere in the middle, where
// a profile at exit would show nothing. It samples the live heap every 20ms and keeps the
// profile of the largest one seen (each new peak costs two extra GC cycles, so the run is
// slower and its heap smaller than without the profile). An existing file is never overwritten: the command then
// runs without a profile.
func startMemProfile(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "autoq: AUTOQ_MEMPROFILE: %v\n", err)
		return func() {}
	}
	var (
		mu   sync.Mutex
		peak uint64
		best bytes.Buffer
	)
	live := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[0].Value.Uint64()
	}
	sample := func() {
		mu.Lock()
		defer mu.Unlock()
		if n := live(); n > peak || best.Len() == 0 {
			// The heap profile lags the live heap by up to two GC cycles: two more cycles
			// now make it show what is live at this peak.
			runtime.GC()
			runtime.GC()
			peak = max(n, live())
			best.Reset()
			pprof.Lookup("heap").WriteTo(&best, 0)
		}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		sample()
		mu.Lock()
		defer mu.Unlock()
		if _, err := f.Write(best.Bytes()); err != nil {
			fmt.Fprintf(stderr, "autoq: AUTOQ_MEMPROFILE: %v\n", err)
		}
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "autoq: AUTOQ_MEMPROFILE: %v\n", err)
		}
	}
}
