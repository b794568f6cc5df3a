package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Temporaries are named ".NAME.autoq-tmp-PID-RANDOM" beside their target, so that they are
// hidden, say which output they were for and which process wrote them. A temporary
// directory also holds a marker file (tempMarker) with the same facts. While a process
// writes one, it is in this package's registry, so that an interrupted job can remove what
// it was writing (RemoveActive); a crashed process's temporaries are found by name and
// marker at the next start (Stale) and removed (RemoveStale).

const (
	tempTag    = ".autoq-tmp-"
	tempMarker = ".autoq-tmp"
)

var (
	activeMu sync.Mutex
	active   = map[string]string{} // temporary -> the path to restore it to ("" = remove it)
	closing  bool                  // RemoveActive ran: no new temporary may start (the process is exiting)
	removed  []string              // temporaries removed unfinished (RemoveTemp), for RemoveActive's report
)

var errClosing = errors.New("the process is being interrupted")

func tempPattern(target string) string {
	return "." + filepath.Base(target) + tempTag + strconv.Itoa(os.Getpid()) + "-*"
}

func isClosing() bool {
	activeMu.Lock()
	defer activeMu.Unlock()
	return closing
}

func register(p string) {
	activeMu.Lock()
	active[p] = ""
	activeMu.Unlock()
}

// registerAside registers a previous output moved aside while its replacement is renamed
// into place: if the process is interrupted in between, RemoveActive moves it back.
func registerAside(p, target string) {
	activeMu.Lock()
	active[p] = target
	activeMu.Unlock()
}

func unregister(p string) {
	activeMu.Lock()
	delete(active, p)
	activeMu.Unlock()
}

// createTemp creates and registers a temporary file for target.
func createTemp(target string) (*os.File, error) {
	if isClosing() {
		return nil, fmt.Errorf("create temporary file for %s: %w", target, errClosing)
	}
	f, err := os.CreateTemp(filepath.Dir(target), tempPattern(target))
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", target, err)
	}
	register(f.Name())
	return f, nil
}

// MkdirTemp creates and registers a temporary directory beside target, with its marker.
// The caller renames it into place (then calls Done) or removes it (RemoveTemp).
func MkdirTemp(target string) (string, error) {
	if isClosing() {
		return "", fmt.Errorf("create temporary directory for %s: %w", target, errClosing)
	}
	dir, err := os.MkdirTemp(filepath.Dir(target), tempPattern(target))
	if err != nil {
		return "", fmt.Errorf("create temporary directory for %s: %w", target, err)
	}
	register(dir)
	m, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "target": target, "started": time.Now().UTC().Format(time.RFC3339)})
	if err := os.WriteFile(filepath.Join(dir, tempMarker), m, 0o644); err != nil {
		RemoveTemp(dir)
		return "", fmt.Errorf("create temporary directory for %s: %w", target, err)
	}
	return dir, nil
}

// Done unregisters a temporary that was renamed into place (its marker, for a directory,
// is removed first by the caller).
func Done(p string) { unregister(p) }

// RemoveTemp removes and unregisters a temporary file or directory (an unfinished output).
func RemoveTemp(p string) {
	os.RemoveAll(p)
	activeMu.Lock()
	if _, ok := active[p]; ok {
		removed = append(removed, p)
	}
	delete(active, p)
	activeMu.Unlock()
}

// RemoveActive removes every temporary this process is still writing and returns the paths
// of all the unfinished temporaries removed so far (by it, or by a job unwinding from an
// error or a cancellation), sorted. No new temporary can be created afterwards (the process
// is about to exit).
func RemoveActive() []string {
	activeMu.Lock()
	closing = true
	restore := active
	active = map[string]string{}
	ps := removed
	removed = nil
	activeMu.Unlock()
	for p, target := range restore {
		if target != "" {
			if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) && os.Rename(p, target) == nil {
				continue // the previous output is back in place
			}
		}
		os.RemoveAll(p)
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// StaleTemp is a temporary left by an autoq process that no longer runs.
type StaleTemp struct {
	Path string
	PID  int
	Size int64 // bytes (a directory: all files below it)
}

// Stale lists the temporaries in dir whose writing process is gone: entries named
// ".NAME.autoq-tmp-PID-..." (directories must also hold the marker, or be empty) with PID
// not running.
func Stale(dir string) ([]StaleTemp, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []StaleTemp
	for _, e := range es {
		name := e.Name()
		i := strings.Index(name, tempTag)
		if !strings.HasPrefix(name, ".") || i < 0 {
			continue
		}
		pidStr, _, _ := strings.Cut(name[i+len(tempTag):], "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := filepath.Join(dir, name)
		if e.IsDir() {
			// The marker is written right after the directory is made, before any content:
			// a directory without it is ours only if empty (killed in between).
			if _, err := os.Stat(filepath.Join(p, tempMarker)); err != nil {
				if empty, err := isEmptyDir(p); err != nil || !empty {
					continue // not ours
				}
			}
		}
		out = append(out, StaleTemp{Path: p, PID: pid, Size: treeSize(p)})
	}
	return out, nil
}

// RemoveStale removes the stale temporaries of dir and returns what it removed.
func RemoveStale(dir string) ([]StaleTemp, error) {
	st, err := Stale(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range st {
		if err := os.RemoveAll(s.Path); err != nil {
			return nil, fmt.Errorf("remove stale temporary %s: %w", s.Path, err)
		}
	}
	return st, nil
}

func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func treeSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
