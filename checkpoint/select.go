package checkpoint

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
)

// IsDefaultQuantized says whether a 2-D float weight is quantized when no include pattern
// is given: everything but the token embedding (a lookup table) and the classifier
// (lm_head, the most sensitive matrix), which are kept in full precision by convention.
func IsDefaultQuantized(name string) bool {
	return !strings.Contains(name, "embed") && !strings.HasPrefix(name, "lm_head") && !strings.Contains(name, ".lm_head")
}

// UnmatchedPatternError reports an include pattern that matched no 2-D weight (almost
// always a typo, so callers treat it as a usage error).
type UnmatchedPatternError struct{ Pattern string }

func (e *UnmatchedPatternError) Error() string {
	return fmt.Sprintf("--include %q matches no 2-D weight", e.Pattern)
}

// CheckPatterns reports the first malformed glob (path.Match syntax).
func CheckPatterns(patterns ...string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	return nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// SelectWeights returns the tensors to quantize: 2-D F32/F16/BF16 tensors matched by an
// include glob (or, with no include, those IsDefaultQuantized accepts) and by no exclude
// glob. Globs use path.Match on the whole name ('*' also crosses dots). An include that
// matches no 2-D weight is an *UnmatchedPatternError; selecting nothing is an error.
func SelectWeights(src Tensors, include, exclude []string) (map[string]bool, error) {
	if err := CheckPatterns(append(append([]string(nil), include...), exclude...)...); err != nil {
		return nil, err
	}
	sel := map[string]bool{}
	used := map[string]bool{}
	for _, n := range src.Names() {
		info, _ := src.Info(n)
		if len(info.Shape) != 2 || !info.DType.IsFloat() {
			continue
		}
		chosen := IsDefaultQuantized(n)
		if len(include) > 0 {
			chosen = false
			for _, p := range include {
				if ok, _ := path.Match(p, n); ok {
					chosen, used[p] = true, true
				}
			}
		}
		if chosen && !matchAny(exclude, n) {
			sel[n] = true
		}
	}
	for _, p := range include {
		if !used[p] {
			return nil, &UnmatchedPatternError{Pattern: p}
		}
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no weight selected for quantization")
	}
	return sel, nil
}

// SideFiles are the non-weight files of a Hugging Face directory that travel with its
// weights when autoq writes a new checkpoint.
var SideFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"tokenizer.model", "special_tokens_map.json"}

// CopySideFiles copies the SideFiles present in srcDir into dstDir (atomically each).
func CopySideFiles(srcDir, dstDir string) error {
	for _, f := range SideFiles {
		b, err := os.ReadFile(filepath.Join(srcDir, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(dstDir, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
