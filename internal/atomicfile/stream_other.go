//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

// setDirect: only Linux gets direct writes; elsewhere a Stream writes through the cache.
func setDirect(f *os.File, on bool) error { return errors.New("direct I/O not supported") }

func isInvalid(err error) bool { return false }
