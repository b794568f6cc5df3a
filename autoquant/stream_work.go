package autoquant

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/internal/atomicfile"
)

// WorkKind marks a resumable run's work directory (internal/atomicfile's output marker).
const WorkKind = "run work directory"

// The work directory holds every stage's result as it completes (docs/SCALE.md):
//
//	run.json                 the stage fingerprints below
//	calib/block-NNNN.json    per block: activation histograms, sensitivity rows
//	ref/logits.f32, ref.json full-precision logits of the sensitivity windows (exact mode)
//	plan.json                the plan
//	quant/block-NNNN.*       per block: the quantized layers (autoq's layout) and their
//	                         activation settings
//	spill/                   boundary states beyond the memory budget (scratch)
//
// A stage's results are valid while its fingerprint and those before it match.
type fingerprints struct {
	Version int    `json:"version"`
	Model   string `json:"model"`       // the checkpoint: path, config, tensors, file sizes and times
	Data    string `json:"data"`        // the token windows of every split
	Calib   string `json:"calibration"` // options of calibration and sensitivity
	Plan    string `json:"plan"`        // options of the planner
	Quant   string `json:"quantize"`    // options of the final quantization
}

const workVersion = 1

// stageNames are the fingerprint levels in order.
var stageNames = []string{"model", "data", "calibration", "plan", "quantize"}

func (f fingerprints) levels() []string { return []string{f.Model, f.Data, f.Calib, f.Plan, f.Quant} }

// hashOf fingerprints any JSON-encodable value.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fingerprint: %v", err)) // only our own plain structs are hashed
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:12])
}

// windowsPrint fingerprints token windows.
func windowsPrint(splits ...[][]int) string {
	h := sha256.New()
	var buf []byte
	for _, ws := range splits {
		buf = binary.AppendUvarint(buf[:0], uint64(len(ws)))
		h.Write(buf)
		for _, w := range ws {
			buf = binary.AppendUvarint(buf[:0], uint64(len(w)))
			for _, t := range w {
				buf = binary.AppendUvarint(buf, uint64(t))
			}
			h.Write(buf)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// workDir is an open work directory; valid says how many stage levels of its content are
// still valid (len(stageNames): everything).
type workDir struct {
	dir   string
	fp    fingerprints
	valid int
}

// openWork creates the work directory, or with resume opens the one an earlier run left:
// results of stages whose fingerprints still match are kept, later ones are discarded (a
// different model or data is an error: nothing of it applies). Without resume an existing
// work directory is an error unless force (then it is started over).
func openWork(env Env, dir string, resume, force bool, fp fingerprints) (*workDir, error) {
	fp.Version = workVersion
	w := &workDir{dir: dir, fp: fp}
	_, err := os.Stat(dir)
	exists := err == nil
	if exists && atomicfile.MarkerKind(dir) != WorkKind {
		return nil, usagef("--work-dir %s exists and is not an autoq %s: choose another path", dir, WorkKind)
	}
	switch {
	case resume && !exists:
		return nil, usagef("--resume: no work directory at %s (nothing to resume; run without --resume)", dir)
	case resume:
		var old fingerprints
		if ok, err := w.load("run.json", &old); err != nil || !ok {
			return nil, fmt.Errorf("--resume: %s has no readable run.json (%v): start over with --force", dir, err)
		}
		if old.Version != workVersion {
			return nil, usagef("--resume: %s was written by another version of autoq (work format %d, this one %d): start over with --force", dir, old.Version, workVersion)
		}
		have, want := old.levels(), fp.levels()
		w.valid = len(have)
		for i := range have {
			if have[i] != want[i] {
				w.valid = i
				break
			}
		}
		if w.valid < 2 {
			return nil, usagef("--resume: the %s differs from the interrupted run's (%s): give the same --model and --data, or start over with --force", stageNames[w.valid], dir)
		}
		if w.valid < len(have) {
			env.logf("resume: the %s options changed: keeping the stages before it, redoing the rest\n", stageNames[w.valid])
			w.discard(w.valid)
		}
	case exists && !force:
		return nil, usagef("--work-dir %s holds an interrupted run: give --resume to continue it, or --force to start over", dir)
	case exists:
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	if !resume {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("--work-dir: %w", err)
		}
		if err := atomicfile.MarkDir(dir, WorkKind); err != nil {
			return nil, err
		}
	}
	return w, w.save("run.json", fp)
}

// discard removes the results of stage level i and later.
func (w *workDir) discard(level int) {
	if level <= 2 {
		os.RemoveAll(w.path("calib"))
		os.RemoveAll(w.path("ref"))
	}
	if level <= 3 {
		os.Remove(w.path("plan.json"))
	}
	os.RemoveAll(w.path("quant"))
	os.RemoveAll(w.path("spill"))
}

func (w *workDir) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

func blockFile(kind string, b int, ext string) string {
	return filepath.Join(kind, fmt.Sprintf("block-%04d%s", b, ext))
}

// save writes v as JSON at name (atomically).
func (w *workDir) save(name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("work directory %s: %w", w.dir, err)
	}
	p := w.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'), 0o644)
}

// load reads name into v; false when it does not exist.
func (w *workDir) load(name string, v any) (bool, error) {
	b, err := os.ReadFile(w.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("work directory: %s: %w", w.path(name), err)
	}
	return true, nil
}

// remove deletes the work directory (after a published run).
func (w *workDir) remove() error { return os.RemoveAll(w.dir) }

// defaultWorkDir is where a run keeps its work when --work-dir is not given: beside --out.
func defaultWorkDir(out string) string { return filepath.Clean(out) + ".autoq-work" }
