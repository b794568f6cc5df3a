package quant

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// rowChunk is the number of rows one task handles. Work is split into fixed chunks (not one
// per worker) so that which rows go together never depends on GOMAXPROCS; each row is
// computed independently anyway, and errors are reported by the lowest failing chunk, so
// results and error messages are the same for any worker count.
const rowChunk = 16

// parallelRows calls fn(lo, hi) for consecutive row ranges covering [0, n), on up to
// GOMAXPROCS goroutines. It returns the error of the lowest range that failed (nil if none):
// since fn scans its range in order, that is the first failing row overall.
func parallelRows(n int, fn func(lo, hi int) error) error {
	return ParallelChunks(n, rowChunk, fn)
}

// parallelChunks is parallelRows with a chosen chunk size.
func ParallelChunks(n, chunk int, fn func(lo, hi int) error) error {
	if n <= 0 {
		return nil
	}
	tasks := (n + chunk - 1) / chunk
	errs := make([]error, tasks)
	workers := runtime.GOMAXPROCS(0)
	if workers > tasks {
		workers = tasks
	}
	if workers <= 1 {
		for t := 0; t < tasks; t++ {
			if errs[t] = fn(t*chunk, min((t+1)*chunk, n)); errs[t] != nil {
				return errs[t]
			}
		}
		return nil
	}
	var next atomic.Int64 // the next task to take
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t := int(next.Add(1) - 1); t < tasks; t = int(next.Add(1) - 1) {
				errs[t] = fn(t*chunk, min((t+1)*chunk, n))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
