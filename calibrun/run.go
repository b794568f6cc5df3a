package calibrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tokenizer"
)

// Defaults of the diagnostics (documented in docs/CALIBRATION.md).
const (
	DefaultRounds       = 4
	DefaultTolerance    = 0.02 // relative amax change between the last two rounds
	DefaultOutlierRatio = 8.0  // channel absmax / median channel absmax that flags a channel
	DefaultMinTokens    = 16384
)

// Options configures a calibration run.
type Options struct {
	SeqLen int    // window length (tokens)
	Batch  int    // windows per forward pass
	Tokens int    // cap on the tokens of the stream (before sharding); 0 = all
	Split  string // eval.DataOptions split: "calib" (first half of the file), "eval" or "all"

	Shard, Shards int // this process takes the windows whose index % Shards == Shard

	Rounds int           // consecutive rounds of the stream (>= 1)
	Calib  calib.Options // the calibrator whose amax is tracked and reported

	// Engines: one worker per engine (one per GPU, or several CPU engines); each worker runs
	// its own forward passes and histograms, merged exactly after every round. Empty means
	// one worker on the CPU backend (calib's reference).
	Engines []calib.Engine
	// Runners, when set, holds one device model runner per engine: worker i then runs its
	// forward passes on Runners[i] and bins every linear input on the device
	// (model.Runner.ForwardHistograms), so activations never leave the GPU. The device
	// forward pass has F16 activations, so its histograms are close to, not equal to, those
	// of the CPU's F32 pass. m still serves the probe pass that finds shared inputs.
	Runners []model.Runner

	Tolerance    float64 // convergence tolerance; 0 = DefaultTolerance
	OutlierRatio float64 // outlier channel ratio; 0 = DefaultOutlierRatio
	MinTokens    int     // fewer tokens than this is warned about; 0 = DefaultMinTokens

	// Ctx stops the run between windows; nil: never.
	Ctx context.Context

	// Progress, if set, is called (from worker goroutines) with the tokens of every batch done.
	Progress func(tokens int)
}

// Round is the state after one round: cumulative counts and every group's threshold.
type Round struct {
	Sequences int            `json:"sequences"`
	Tokens    int            `json:"tokens"`
	Results   []calib.Result `json:"-"` // per group, the tracked calibrator
	KL        []float64      `json:"-"` // per group, the entropy calibrator's minimal KL
	AbsMax    []float32      `json:"-"` // per group, the largest |x| so far
}

// Result is what a run collected: one cumulative histogram per input group, the per-round
// trajectory and the coverage of the data.
type Result struct {
	Groups    []Group
	Hists     []*calib.Histogram // per group, cumulative over all rounds
	Rounds    []Round
	Coverage  Coverage
	Windows   int // windows of this shard (the state's batch count)
	Total     int // windows of the whole stream (all shards)
	Seconds   float64
	Opt       Options
	ModelCtx  int // the model's context length (max positions)
	VocabSize int

	model           *model.Model // for the shard record's fingerprint
	streamPrint     string       // fingerprint of the whole stream's windows
	fingerprintOnce sync.Once
	modelPrint      string
}

// Run calibrates m on the text (or .jsonl token ids) at data. The stream is read twice:
// once to count the windows (so that rounds are fixed slices of the global window index,
// the same in every shard) and once to run them. Memory does not depend on the data size.
func Run(m *model.Model, data string, tok tokenizer.Tokenizer, opt Options) (*Result, error) {
	return RunStream(m, func() (eval.Source, error) {
		return eval.OpenWindows(data, tok, m.Config.Vocab, eval.DataOptions{SeqLen: opt.SeqLen, MaxTokens: opt.Tokens, Split: opt.Split})
	}, tok, opt)
}

// Stream opens the window stream of a calibration run; RunStream calls it twice (to count
// the windows, then to run them), and closes what it returns when it is an io.Closer.
type Stream func() (eval.Source, error)

// Windows is the Stream of windows already in memory.
func Windows(ws [][]int) Stream {
	return func() (eval.Source, error) { return &memWindows{ws: ws}, nil }
}

type memWindows struct {
	ws [][]int
	i  int
}

func (w *memWindows) Next() ([]int, error) {
	if w.i >= len(w.ws) {
		return nil, io.EOF
	}
	w.i++
	return w.ws[w.i-1], nil
}

// RunStream is Run over any window stream (opt.SeqLen, Tokens and Split are then the
// stream's business and only reported). tok may be nil (token ids): coverage then shows
// ids instead of pieces.
func RunStream(m *model.Model, open Stream, tok tokenizer.Tokenizer, opt Options) (*Result, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	engines := opt.Engines
	if len(engines) == 0 {
		engines = []calib.Engine{backend.NewCPU()}
	}
	if len(engines) > 1 {
		// Workers share the model; the full-precision Dense layers keep no state between
		// calls, other Linear implementations promise one goroutine at a time only.
		for _, n := range m.LinearNames() {
			if _, ok := m.Linear(n).(*model.Dense); !ok {
				return nil, fmt.Errorf("calibrun: %d workers share the model but layer %s is %T, not full-precision Dense (calibrate the unquantized model, or use one worker)", len(engines), n, m.Linear(n))
			}
		}
	}
	total, stream, err := countWindows(open)
	if err != nil {
		return nil, err
	}
	bos := 1
	if tok != nil {
		bos = tok.BOS()
	}
	groups, err := probeGroups(m, bos)
	if err != nil {
		return nil, err
	}
	rounds := min(opt.Rounds, total)
	res := &Result{Groups: groups, Total: total, Opt: opt, ModelCtx: m.Config.MaxSeq, VocabSize: m.Config.Vocab,
		model: m, streamPrint: stream}
	res.Hists = make([]*calib.Histogram, len(groups))
	for i, g := range groups {
		res.Hists[i] = calib.NewHistogram(g.Name)
		res.Hists[i].ChannelAbsMax = make([]float32, g.Channels)
	}
	if len(opt.Runners) > 0 && len(opt.Runners) != len(engines) {
		return nil, fmt.Errorf("calibrun: %d device runners for %d engines", len(opt.Runners), len(engines))
	}
	workers := make([]*worker, len(engines))
	for i, e := range engines {
		workers[i] = newWorker(m, e, groups)
		if len(opt.Runners) > 0 {
			workers[i].runner = opt.Runners[i]
		}
	}
	cov := newCoverage(m.Config.Vocab, tok, bos)
	src, err := open()
	if err != nil {
		return nil, err
	}
	defer closeSource(src)

	start := time.Now()
	pool := startPool(workers, opt.Progress)
	var batch [][]int
	cur := 0
	for i := 0; ; i++ {
		win, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && opt.Ctx != nil {
			err = opt.Ctx.Err()
		}
		if err != nil {
			pool.stop()
			return nil, err
		}
		if i%opt.Shards != opt.Shard {
			continue
		}
		if r := min(i*rounds/total, rounds-1); r != cur {
			// Rounds with no window of this shard still get a point (nothing changed).
			for ; cur < r; cur++ {
				pool.send(batch)
				batch = nil
				if err := res.endRound(pool, engines[0], cov); err != nil {
					return nil, err
				}
				pool = startPool(workers, opt.Progress)
			}
		}
		cov.add(win)
		res.Windows++
		batch = append(batch, win)
		if len(batch) == opt.Batch {
			pool.send(batch)
			batch = nil
		}
	}
	for ; cur < rounds; cur++ {
		pool.send(batch)
		batch = nil
		if err := res.endRound(pool, engines[0], cov); err != nil {
			return nil, err
		}
		if cur+1 < rounds {
			pool = startPool(workers, opt.Progress)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Coverage = cov.summary()
	return res, nil
}

func (o *Options) check() error {
	switch {
	case o.SeqLen < 2:
		return fmt.Errorf("calibrun: sequence length must be at least 2, got %d", o.SeqLen)
	case o.Batch < 1:
		return fmt.Errorf("calibrun: batch must be at least 1, got %d", o.Batch)
	case o.Tokens < 0:
		return fmt.Errorf("calibrun: token cap must not be negative, got %d", o.Tokens)
	case o.Shards < 1 || o.Shard < 0 || o.Shard >= o.Shards:
		return fmt.Errorf("calibrun: shard %d/%d: want 0 <= I < N", o.Shard, o.Shards)
	case o.Rounds < 1:
		return fmt.Errorf("calibrun: rounds must be at least 1, got %d", o.Rounds)
	}
	// Zero means the default.
	o.Tolerance = cmp.Or(o.Tolerance, DefaultTolerance)
	o.OutlierRatio = cmp.Or(o.OutlierRatio, DefaultOutlierRatio)
	o.MinTokens = cmp.Or(o.MinTokens, DefaultMinTokens)
	if o.Calib.Method == 0 {
		o.Calib = calib.DefaultOptions(calib.MethodEntropy)
	}
	return nil
}

func closeSource(src eval.Source) {
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
}

// countWindows counts the stream's windows and fingerprints their token ids.
func countWindows(open Stream) (int, string, error) {
	src, err := open()
	if err != nil {
		return 0, "", err
	}
	defer closeSource(src)
	n := 0
	wp := newWindowPrint()
	for {
		win, err := src.Next()
		if errors.Is(err, io.EOF) {
			return n, wp.fp.String(), nil
		}
		if err != nil {
			return 0, "", err
		}
		wp.add(win)
		n++
	}
}

// endRound waits for the round's batches, merges every worker's histograms into the
// cumulative ones (exact, so the worker count and batch assignment do not matter) and
// records each group's threshold and minimal KL on copies of the cumulative histograms.
func (r *Result) endRound(p *pool, eng calib.Engine, cov *coverage) error {
	if err := p.stop(); err != nil {
		return err
	}
	for _, w := range p.workers {
		for gi, h := range w.hists {
			if err := r.Hists[gi].Merge(h); err != nil {
				return fmt.Errorf("calibrun: merge %s: %w", h.Name, err)
			}
		}
		w.reset()
	}
	snap := make([]*calib.Histogram, len(r.Hists))
	for i, h := range r.Hists {
		snap[i] = h.Clone()
	}
	res, err := eng.Thresholds(snap, r.Opt.Calib)
	if err != nil {
		return fmt.Errorf("calibrun: thresholds after round %d: %w", len(r.Rounds)+1, err)
	}
	kl := make([]float64, len(res))
	if r.Opt.Calib.Method == calib.MethodEntropy {
		for i, x := range res {
			kl[i] = x.KL
		}
	} else {
		ent, err := eng.Thresholds(snap, entropyOptions(r.Opt.Calib))
		if err != nil {
			return fmt.Errorf("calibrun: entropy after round %d: %w", len(r.Rounds)+1, err)
		}
		for i, x := range ent {
			kl[i] = x.KL
		}
	}
	absmax := make([]float32, len(snap))
	for i, h := range snap {
		absmax[i] = h.AbsMax
	}
	r.Rounds = append(r.Rounds, Round{Sequences: cov.sequences, Tokens: cov.tokens, Results: res, KL: kl, AbsMax: absmax})
	return nil
}

// entropyOptions is the entropy calibrator with the levels of o (its KL is what the rounds
// track whatever the chosen method).
func entropyOptions(o calib.Options) calib.Options {
	e := calib.DefaultOptions(calib.MethodEntropy)
	e.Levels = o.Levels
	return e
}

// Histograms returns one histogram per linear layer (each member of a group gets a copy of
// the group's histogram under its own name), sorted by name: what a calibration table and
// a state file hold.
func (r *Result) Histograms() []*calib.Histogram {
	var out []*calib.Histogram
	for gi, g := range r.Groups {
		for _, n := range g.Members {
			h := r.Hists[gi].Clone()
			h.Name = n
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pool feeds batches to the workers for one round.
type pool struct {
	workers []*worker
	jobs    chan [][]int
	wg      sync.WaitGroup
	stopped bool
}

func startPool(ws []*worker, progress func(int)) *pool {
	p := &pool{workers: ws, jobs: make(chan [][]int, len(ws))}
	for _, w := range ws {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for b := range p.jobs {
				if w.err != nil {
					continue // drain
				}
				if err := w.run(b); err != nil {
					w.err = err
					continue
				}
				if progress != nil {
					n := 0
					for _, s := range b {
						n += len(s)
					}
					progress(n)
				}
			}
		}()
	}
	return p
}

func (p *pool) send(b [][]int) {
	if len(b) > 0 {
		p.jobs <- b
	}
}

// stop closes the round and returns the first worker error.
func (p *pool) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	close(p.jobs)
	p.wg.Wait()
	for _, w := range p.workers {
		if w.err != nil {
			return fmt.Errorf("calibrun: forward pass: %w", w.err)
		}
	}
	return nil
}
