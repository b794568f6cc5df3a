package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// setDirect turns O_DIRECT on or off for f (fcntl F_SETFL). File systems without
// O_DIRECT refuse it here (EINVAL) or at the first write.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if e != 0 {
			errno = e
			return
		}
		if on {
			flags |= syscall.O_DIRECT
		} else {
			flags &^= syscall.O_DIRECT
		}
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags); e != 0 {
			errno = e
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func isInvalid(err error) bool { return errors.Is(err, syscall.EINVAL) }
