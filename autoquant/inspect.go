package autoquant

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/quantfile"
)

// Inspect is `autoq inspect`: a checkpoint's tensors (name, dtype, shape, bytes, autoq
// scheme) and totals.
func Inspect(path string) (*InspectReport, error) {
	o, err := checkpoint.OpenAny(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	rep := &InspectReport{Path: path, Metadata: o.Metadata()}
	schemes := quantizedSchemes(rep.Metadata)
	for _, n := range o.Names() {
		info, _ := o.Info(n)
		rep.Tensors = append(rep.Tensors, InspectRow{Name: n, DType: info.DType.String(), Shape: info.Shape, Bytes: info.Size, Quant: schemes[n]})
		rep.Totals.Tensors++
		rep.Totals.Elements += int64(numElements(info.Shape))
		rep.Totals.Bytes += info.Size
	}
	if o.Config != nil {
		rep.Architecture = o.Config.Architecture
	}
	return rep, nil
}

func numElements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// InspectRow is one tensor of a checkpoint.
type InspectRow struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Bytes int64  `json:"bytes"`
	Quant string `json:"quant,omitempty"` // scheme of an autoq quantized weight's .qweight
}

// quantizedSchemes maps each W.qweight of an autoq checkpoint to its scheme name (w4g32...),
// read from the autoq.quant.W metadata (docs/FORMAT.md).
func quantizedSchemes(meta map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range meta {
		name, ok := strings.CutPrefix(k, quantfile.QuantMetaKey)
		if !ok {
			continue
		}
		var m quantfile.QuantMeta
		if json.Unmarshal([]byte(v), &m) != nil {
			out[name+quantfile.QWeightSuffix] = "invalid metadata"
			continue
		}
		g, err := quant.ParseGranularity(m.Granularity)
		if err != nil {
			out[name+quantfile.QWeightSuffix] = "invalid metadata"
			continue
		}
		out[name+quantfile.QWeightSuffix] = quant.Scheme{Bits: m.Bits, Symmetric: m.Symmetric, Granularity: g, GroupSize: m.GroupSize}.String()
	}
	return out
}

// InspectReport is the result of Inspect.
type InspectReport struct {
	Path         string            `json:"path"`
	Architecture string            `json:"architecture,omitempty"`
	Tensors      []InspectRow      `json:"tensors"`
	Metadata     map[string]string `json:"metadata"`
	Totals       struct {
		Tensors  int   `json:"tensors"`
		Elements int64 `json:"elements"`
		Bytes    int64 `json:"bytes"`
	} `json:"totals"`
}

// WriteTable prints the tensors and totals.
func (r *InspectReport) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tdtype\tshape\tbytes\tquant")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", t.Name, t.DType, t.Shape, t.Bytes, t.Quant)
	}
	tw.Flush()
	arch := ""
	if r.Architecture != "" {
		arch = ", " + r.Architecture
	}
	fmt.Fprintf(w, "\n%d tensors, %d elements, %s (%d bytes)%s\n", r.Totals.Tensors, r.Totals.Elements, HumanBytes(r.Totals.Bytes), r.Totals.Bytes, arch)
	if len(r.Metadata) > 0 {
		fmt.Fprintf(w, "%d metadata entries (--json shows them)\n", len(r.Metadata))
	}
}
