package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/autoq/autoq/internal/atomicfile"
)

// interruptGrace is how long a cancelled job may take to stop at its next check before the
// process removes its temporaries and exits anyway (a second Ctrl-C does it at once).
const interruptGrace = 3 * time.Second

// interruptContext returns a context that SIGINT and SIGTERM cancel. Jobs stop at their
// next check of it; runMain then removes the temporary outputs and exits 130. A job busy
// in a long computation is not waited for beyond interruptGrace or a second signal: the
// temporaries are removed and the process exits from here.
func interruptContext(stderr io.Writer) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(stderr, "\nautoq: %v: stopping (Ctrl-C again to stop at once); temporary outputs will be removed\n", s)
		cancel()
		select {
		case <-sigs:
		case <-time.After(interruptGrace):
		}
		os.Exit(interrupted(stderr))
	}()
	return ctx
}

var interruptOnce sync.Once

// interrupted removes the temporaries of the interrupted job, says what it removed and
// returns the exit code. Only the first call does the work.
func interrupted(stderr io.Writer) int {
	interruptOnce.Do(func() {
		removed := atomicfile.RemoveActive()
		if len(removed) == 0 {
			fmt.Fprintln(stderr, "autoq: interrupted; no temporary output to remove, nothing was written")
			return
		}
		for _, p := range removed {
			fmt.Fprintf(stderr, "autoq: interrupted; removed the unfinished output %s\n", p)
		}
	})
	return exitInterrupted
}
