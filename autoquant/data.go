package autoquant

import (
	"fmt"
	"io"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/tokenizer"
)

// DataOptions says how many tokens each stage reads from a data file.
type DataOptions struct {
	SeqLen      int // window length (default 256)
	CalibTokens int // calibration split: activation thresholds and GPTQ Hessians (default 8192)
	SensTokens  int // calibration split, after the calibration tokens: sensitivity (default 2048)
	EvalTokens  int // evaluation split: verification (default 0 = the whole split)
}

func (o *DataOptions) defaults() {
	if o.SeqLen <= 0 {
		o.SeqLen = 256
	}
	if o.CalibTokens <= 0 {
		o.CalibTokens = 8192
	}
	if o.SensTokens <= 0 {
		o.SensTokens = 2048
	}
}

// Data holds token windows for each stage, in memory.
type Data struct {
	Calib, Sens, Eval [][]int
}

// LoadData reads the windows of path (see the package comment for which tokens go where).
func LoadData(path string, tok tokenizer.Tokenizer, vocab int, opt DataOptions) (*Data, error) {
	return loadData(path, tok, vocab, opt, dataNeed{sens: true, eval: true})
}

// loadData reads the calibration windows and the other splits that need asks for.
func loadData(path string, tok tokenizer.Tokenizer, vocab int, opt DataOptions, need dataNeed) (*Data, error) {
	opt.defaults()
	read := func(split string, skip, max int) ([][]int, error) {
		return eval.ReadWindows(path, tok, vocab, eval.DataOptions{SeqLen: opt.SeqLen, MaxTokens: max, Split: split, SkipTokens: skip})
	}
	d := &Data{}
	var err error
	if d.Calib, err = read("calib", 0, opt.CalibTokens); err != nil {
		return nil, err
	}
	if need.sens {
		if d.Sens, err = read("calib", opt.CalibTokens, opt.SensTokens); err != nil {
			return nil, err
		}
	}
	if need.eval {
		if d.Eval, err = read("eval", 0, opt.EvalTokens); err != nil {
			return nil, err
		}
	}
	for name, ws := range map[string][][]int{"calibration": d.Calib, "sensitivity": d.Sens, "evaluation": d.Eval} {
		if len(ws) == 0 && (name == "calibration" || name == "sensitivity" && need.sens || name == "evaluation" && need.eval) {
			return nil, fmt.Errorf("%s: no %s tokens (the file is too short for the requested token counts)", path, name)
		}
	}
	return d, nil
}

// LoadEval reads only the evaluation windows (for verify).
func LoadEval(path string, tok tokenizer.Tokenizer, vocab, seqLen, maxTokens int) ([][]int, error) {
	if seqLen <= 0 {
		seqLen = 256
	}
	ws, err := eval.ReadWindows(path, tok, vocab, eval.DataOptions{SeqLen: seqLen, MaxTokens: maxTokens, Split: "eval"})
	if err == nil && len(ws) == 0 {
		err = fmt.Errorf("%s: no evaluation tokens", path)
	}
	return ws, err
}

// windows is an in-memory eval.Source.
type windows struct {
	ws [][]int
	i  int
}

func newWindows(ws [][]int) *windows { return &windows{ws: ws} }

func (w *windows) Next() ([]int, error) {
	if w.i >= len(w.ws) {
		return nil, io.EOF
	}
	w.i++
	return w.ws[w.i-1], nil
}

func countTokens(ws [][]int) int {
	n := 0
	for _, w := range ws {
		n += len(w)
	}
	return n
}
