package autoquant

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/quant"
)

// stageClock times the pipeline's stages (wall and CPU seconds) and logs each as it ends.
type stageClock struct {
	env   Env
	rep   *RunReport
	n     int
	start time.Time
	cpu0  float64
}

const runStages = 6

func newStageClock(env Env, rep *RunReport) *stageClock {
	return &stageClock{env: env, rep: rep, start: time.Now(), cpu0: cpuSeconds()}
}

func (c *stageClock) record(name, detail string, wall, cpu float64) {
	c.n++
	c.rep.Stages = append(c.rep.Stages, Stage{Name: name, Seconds: wall, CPUSeconds: cpu, Detail: detail})
	c.env.logf("[%d/%d] %-12s %6.1fs  %s\n", c.n, runStages, name, wall, detail)
}

// done ends the current stage.
func (c *stageClock) done(name, detail string) {
	now, cpu := time.Now(), cpuSeconds()
	c.record(name, detail, now.Sub(c.start).Seconds(), cpu-c.cpu0)
	c.start, c.cpu0 = now, cpu
}

// split ends two stages that ran interleaved: the second took sec2 of the interval (its
// CPU time is taken in the same proportion).
func (c *stageClock) split(name1, detail1, name2 string, sec2 float64, detail2 string) {
	now, cpu := time.Now(), cpuSeconds()
	wall, used := now.Sub(c.start).Seconds(), cpu-c.cpu0
	sec2 = min(sec2, wall)
	share := sec2 / max(wall, 1e-9)
	c.record(name1, detail1, wall-sec2, used*(1-share))
	c.record(name2, detail2, sec2, used*share)
	c.start, c.cpu0 = now, cpu
}

// finish records the process's totals.
func (c *stageClock) finish() {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.rep.PeakRSSBytes = ru.Maxrss * 1024
	}
	for _, s := range c.rep.Stages {
		c.rep.CPUSeconds += s.CPUSeconds
	}
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func (p *pipeline) newBar(label string, total int64, unit string) *progress.Bar {
	return progress.New(p.env.bars(), label, total, unit)
}

// sensBatch is the number of windows per batch of the streams that end in the head
// (sensitivity, reference, evaluation): at most Batch, and few enough that one batch's
// logits stay under 64 MiB. The batching changes no number (rows are independent).
func (p *pipeline) sensBatch() int {
	seq := 1
	for _, ws := range [][][]int{p.opt.Data.Sens, p.opt.Data.Eval} {
		for _, w := range ws {
			seq = max(seq, len(w))
		}
	}
	per := int64(seq) * int64(p.src.Cfg.Vocab) * 4
	return max(1, min(p.opt.Batch, int((64<<20)/max(per, 1))))
}

func (p *pipeline) damageUnit() string {
	if p.exact() {
		return "KL"
	}
	return "proxy damage"
}

func (p *pipeline) sensNote() string {
	if !p.exact() {
		return " (proxy: each candidate's relative error at its block's output)"
	}
	if p.rep.ProxySpearman != nil {
		return fmt.Sprintf("; proxy rank agreement %.3f (Spearman)", *p.rep.ProxySpearman)
	}
	return ""
}

func (p *pipeline) seqNote() string {
	if p.so.Sequential {
		return " (sequential: each block's GPTQ inputs from the quantized blocks before it)"
	}
	return ""
}

// makePlan solves the plan from the sensitivity (cheap: always solved again) and stores it.
func (p *pipeline) makePlan() (*plan.Result, error) {
	opt := p.opt
	pl, res, err := solveFor(p.et, p.sens, plan.Options{TargetBits: opt.TargetBits, MaxDamage: opt.MaxKL, Overrides: opt.Overrides})
	if err != nil {
		return nil, err
	}
	if err := p.et.checkPlan(p.env, res.Choices); err != nil {
		return nil, err
	}
	pl.Int4Method = opt.Int4Method
	if pl.Int4Method == "" {
		pl.Int4Method = "gptq"
	}
	rep := p.rep
	rep.Plan, rep.AvgBits, rep.PredictedDamage = pl, res.AvgBits, res.Total
	rep.Layers = map[string]string{}
	for i, l := range res.Layers {
		rep.Layers[l.Name] = res.Choices[i].String()
	}
	p.plan = pl
	if err := os.MkdirAll(p.work.dir, 0o755); err != nil {
		return nil, err
	}
	return res, plan.Write(filepath.Join(p.work.dir, "plan.json"), pl)
}

// latency fills the report's prefill latencies as latency does, on lazy models: the
// baseline, and the export read back with the integer reference kernels where a layer has
// one. With fewer blocks resident than the model has, the timings include reading the
// blocks again.
func (p *pipeline) latency(r *export.Reader) error {
	rep := p.rep
	rep.QuantizedLayers = len(p.layers)
	if len(p.layers) == 0 {
		rep.LatencyNote = "not compared: no layer is quantized (the plan keeps every layer in full precision)"
		return nil
	}
	for _, l := range p.layers {
		s := l.Recipe.Weight
		w8a8 := s.Bits == 8 && s.Symmetric && s.Granularity == quant.PerChannel && l.Act != nil && l.Act.Dynamic
		if s.Bits == 4 || w8a8 {
			rep.KernelLayers++
		}
	}
	if rep.KernelLayers == 0 {
		rep.LatencyNote = "not compared: no quantized layer runs on an integer reference kernel (all are fake-quantized floats)"
		return nil
	}
	if p.so.Device.CUDA {
		if ok, err := timePrefillDevice(p.env, rep, p.so.Device, p.baseline, p.layers, p.opt.Data.Eval[0], p.src.Bytes()); ok || err != nil {
			return err
		}
	}
	cand, err := p.exportedModel(r, true)
	if err != nil {
		return err
	}
	return timePrefill(rep, p.baseline, cand, p.opt.Data.Eval[0])
}

// spearmanOf is the rank correlation of two sensitivity tables over every (layer, scheme)
// pair both hold (average ranks for ties).
func spearmanOf(a, b *plan.Sensitivity) float64 {
	var xs, ys []float64
	bl := map[string]plan.LayerSensitivity{}
	for _, l := range b.Layers {
		bl[l.Name] = l
	}
	for _, l := range a.Layers {
		for s, d := range l.Damage {
			if e, ok := bl[l.Name].Damage[s]; ok {
				xs, ys = append(xs, d.KL), append(ys, e.KL)
			}
		}
	}
	return spearman(xs, ys)
}

// spearman is Pearson's correlation of the ranks of x and y.
func spearman(x, y []float64) float64 {
	rx, ry := ranks(x), ranks(y)
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var mx, my float64
	for i := range rx {
		mx, my = mx+rx[i], my+ry[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy, sxx, syy = sxy+dx*dy, sxx+dx*dx, syy+dy*dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / (math.Sqrt(sxx) * math.Sqrt(syy))
}

func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	out := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		r := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			out[idx[k]] = r
		}
		i = j + 1
	}
	return out
}

// fingerprints identify what each stage's stored results depend on (workDir).
func (p *pipeline) fingerprints() fingerprints {
	type tensorID struct {
		Name  string
		DType string
		Shape []int
	}
	type fileID struct {
		Path  string
		Size  int64
		MTime int64
	}
	var model struct {
		Path    string
		Config  any
		Tensors []tensorID
		Files   []fileID
	}
	model.Path, model.Config = p.src.displayPath(), p.src.Cfg
	for _, nt := range p.src.Tensors {
		model.Tensors = append(model.Tensors, tensorID{nt.Name, nt.T.DType.String(), nt.T.Shape})
	}
	var files []string
	if p.src.ck != nil {
		files = p.src.ck.Files()
	} else if p.src.Path != "" {
		files = []string{p.src.Path}
	}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			abs, _ := filepath.Abs(f)
			model.Files = append(model.Files, fileID{abs, st.Size(), st.ModTime().UnixNano()})
		}
	}
	opt := p.opt
	var schemes []string
	for _, c := range opt.Schemes {
		schemes = append(schemes, c.String())
	}
	var rules []string
	for _, r := range opt.Overrides {
		rules = append(rules, fmt.Sprint(r))
	}
	return fingerprints{
		Model: hashOf(model),
		Data:  windowsPrint(opt.Data.Calib, opt.Data.Sens, opt.Data.Eval) + fmt.Sprintf("/bos%d", opt.BOS),
		Calib: hashOf([]any{schemes, opt.Int4Method, opt.Calib.String(), opt.Batch, opt.RequireConverged, p.so.Sensitivity, p.so.CompareProxy, BestGPTQ, p.serve.String()}),
		Plan:  hashOf([]any{opt.TargetBits, opt.MaxKL, rules, p.et.t.Name}),
		Quant: hashOf([]any{p.so.Sequential}),
	}
}
