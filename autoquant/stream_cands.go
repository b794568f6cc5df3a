package autoquant

import (
	"fmt"
	"os"
	"strings"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
	"github.com/autoq/autoq/safetensors"
)

// The candidate cache. Without --sequential, the quantize pass would round a GPTQ layer
// with the Hessian the calibration pass already had (same windows, same full-precision
// inputs, same options), so the sensitivity pass's rounding of that candidate is the
// quantize pass's result bit for bit. Sensitivity keeps those candidates in the work
// directory (cand/block-NNNN.safetensors, a few bits per weight each), and quantize takes
// the planned one from there instead of running the calibration windows and GPTQ again.

// cachesCandidate reports whether sensitivity keeps candidate c: a weight-only recipe
// rounded with GPTQ (cheap recipes are simply rounded again), in a run whose quantize
// pass uses the first pass's Hessians.
func (p *pipeline) cachesCandidate(c quant.Recipe) bool {
	return !noCacheForTest && !p.so.Sequential && c.Act == quant.ActNone && c.Block == quant.BlockNone && p.usesHessian(c)
}

// noCacheForTest switches the cache off (the test that holds it to the uncached bits).
var noCacheForTest bool

// candName is the cache's name of layer name quantized as c.
func candName(name string, c quant.Recipe) string { return name + "@" + c.String() }

// saveCandidates stores block b's cached candidates (named by candName).
func (p *pipeline) saveCandidates(b int, qs []*quant.QTensor) error {
	if len(qs) == 0 {
		return nil
	}
	if err := os.MkdirAll(p.work.path("cand"), 0o755); err != nil {
		return err
	}
	return writeQTensors(p.work.path(blockFile("cand", b, ".safetensors")), qs)
}

// loadCandidates reads block b's cached candidates; nil (no error) when there are none or
// the run is sequential (its Hessians are not the first pass's).
func (p *pipeline) loadCandidates(b int) (map[string]*quant.QTensor, error) {
	if p.so.Sequential {
		return nil, nil
	}
	path := p.work.path(blockFile("cand", b, ".safetensors"))
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	return readQTensors(path)
}

// candidateNames lists block b's cached candidates (candName) from the file's header,
// without reading their data; nil when there are none or the run is sequential.
func (p *pipeline) candidateNames(b int) (map[string]bool, error) {
	if p.so.Sequential {
		return nil, nil
	}
	path := p.work.path(blockFile("cand", b, ".safetensors"))
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	defer f.Close()
	names := map[string]bool{}
	for k := range f.Metadata() {
		if n, ok := strings.CutPrefix(k, quantfile.QuantMetaKey); ok {
			names[n] = true
		}
	}
	return names, nil
}

// writeQTensors writes qs (autoq's quantized layout) to one safetensors file.
func writeQTensors(path string, qs []*quant.QTensor) error {
	var ts []safetensors.NamedTensor
	meta := map[string]string{quantfile.FormatKey: quantfile.FormatVersion}
	for _, q := range qs {
		qt, err := quantfile.QuantizedTensors(q)
		if err != nil {
			return fmt.Errorf("quantize %s: %w", q.Name, err)
		}
		ts = append(ts, qt...)
		m := quantfile.NewQuantMeta(q.Rows, q.Cols, q.Scheme)
		m.GIdx = q.GIdx != nil
		meta[quantfile.QuantMetaKey+q.Name] = m.Encode()
	}
	return safetensors.WriteFile(path, ts, meta)
}

// readQTensors reads the QTensors of a file writeQTensors wrote (copies: the file is closed).
func readQTensors(path string) (map[string]*quant.QTensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	defer f.Close()
	qs, _, err := quantfile.ReadQuantized(f)
	if err != nil {
		return nil, fmt.Errorf("work directory %s: %w", path, err)
	}
	for _, q := range qs {
		q.Data = append([]byte(nil), q.Data...)
	}
	return qs, nil
}
