package autoquant

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// The error report of `autoq quantize`: one row per tensor, totals, table or JSON.

// tensorRow is one line of the error report.
type tensorRow struct {
	Name          string    `json:"name"`
	Shape         []int     `json:"shape"`
	Scheme        string    `json:"scheme"`
	MSE           jsonFloat `json:"mse"`
	SQNRdB        jsonFloat `json:"sqnr_db"`
	Cosine        jsonFloat `json:"cosine"`
	MaxAbs        jsonFloat `json:"max_abs"`
	BitsPerWeight float64   `json:"bits_per_weight"` // stored levels, scales and zeros
	elements      int64
	signal, noise float64
	stored        int64
}

// QuantizeReport is the result of Quantize: per-tensor errors and totals (table or JSON).
type QuantizeReport struct {
	Source      string      `json:"source"`
	Device      string      `json:"device"`
	Fallback    string      `json:"device_fallback,omitempty"`
	Scheme      string      `json:"scheme"`
	Bits        int         `json:"bits"`
	Symmetric   bool        `json:"symmetric"`
	Granularity string      `json:"granularity"`
	GroupSize   int         `json:"group_size,omitempty"`
	Search      string      `json:"search"`
	Percentile  float64     `json:"percentile,omitempty"`
	Out         string      `json:"out,omitempty"`
	Tensors     []tensorRow `json:"tensors"`
	Kept        []string    `json:"kept"` // tensors copied unchanged
	// Refitted are weights whose input width the group size does not divide: they use the
	// scheme quant.FitCols gives ("name (w4g43)").
	Refitted []string `json:"refitted,omitempty"`
	Totals   struct {
		Quantized        int       `json:"quantized_tensors"`
		QuantizedWeights int64     `json:"quantized_weights"`
		BitsPerWeight    float64   `json:"bits_per_weight"` // over the quantized weights
		SQNRdB           jsonFloat `json:"sqnr_db"`         // summed signal / summed noise
		WorstSQNRdB      jsonFloat `json:"worst_sqnr_db"`
		WorstTensor      string    `json:"worst_tensor"`
		Seconds          float64   `json:"seconds"`
	} `json:"totals"`
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	signal   float64
	noise    float64
	stored   int64
}

func (r *QuantizeReport) add(row tensorRow) {
	r.Tensors = append(r.Tensors, row)
	r.signal += row.signal
	r.noise += row.noise
	r.stored += row.stored
	r.Totals.Quantized++
	r.Totals.QuantizedWeights += row.elements
	if r.Totals.WorstTensor == "" || float64(row.SQNRdB) < float64(r.Totals.WorstSQNRdB) {
		r.Totals.WorstSQNRdB, r.Totals.WorstTensor = row.SQNRdB, row.Name
	}
}

func (r *QuantizeReport) finish(d time.Duration) {
	r.Totals.Seconds = d.Seconds()
	if r.Totals.QuantizedWeights > 0 {
		r.Totals.BitsPerWeight = float64(8*r.stored) / float64(r.Totals.QuantizedWeights)
	}
	switch {
	case r.noise == 0:
		r.Totals.SQNRdB = jf(math.Inf(1))
	case r.signal == 0:
		r.Totals.SQNRdB = jf(math.Inf(-1))
	default:
		r.Totals.SQNRdB = jf(10 * math.Log10(r.signal/r.noise))
	}
}

// WriteTable prints the report as the CLI's table.
func (r *QuantizeReport) WriteTable(w io.Writer) {
	search := r.Search
	if r.Percentile != 0 {
		search = fmt.Sprintf("%s %.6g", search, r.Percentile)
	}
	fmt.Fprintf(w, "autoq quantize: %s, scheme %s, search %s, device %s\n\n", r.Source, r.Scheme, search, r.Device)
	// Names are padded to one width so that right alignment leaves them left-aligned.
	nw := len("tensor")
	for _, t := range r.Tensors {
		nw = max(nw, len(t.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tshape\tscheme\tMSE\tSQNR dB\tcosine\tmax abs\tbits/w\t\n", nw, "tensor")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%-*s\t%dx%d\t%s\t%.3e\t%.2f\t%.6f\t%.4g\t%.3f\t\n", nw, t.Name, t.Shape[0], t.Shape[1], t.Scheme,
			float64(t.MSE), float64(t.SQNRdB), float64(t.Cosine), float64(t.MaxAbs), t.BitsPerWeight)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d tensors quantized (%d weights, %.3f bits/weight with scales), %d kept in full precision\n",
		r.Totals.Quantized, r.Totals.QuantizedWeights, r.Totals.BitsPerWeight, len(r.Kept))
	if len(r.Refitted) > 0 {
		fmt.Fprintf(w, "(%d refitted to a group size dividing their width: %s)\n", len(r.Refitted), strings.Join(r.Refitted, ", "))
	}
	fmt.Fprintf(w, "overall SQNR %.2f dB; worst %.2f dB (%s)\n", float64(r.Totals.SQNRdB), float64(r.Totals.WorstSQNRdB), r.Totals.WorstTensor)
	fmt.Fprintf(w, "size %s -> %s (%.2fx) in %.2fs\n", HumanBytes(r.BytesIn), HumanBytes(r.BytesOut), float64(r.BytesIn)/math.Max(1, float64(r.BytesOut)), r.Totals.Seconds)
	if r.Out != "" {
		fmt.Fprintf(w, "wrote %s\n", r.Out)
	}
}
