// Package calibrun calibrates a model's activation thresholds from text: it streams a data
// file in token windows, runs the full-precision forward pass in batches and feeds the
// input of every linear layer into package calib's exactly mergeable histograms (with
// per-channel absmax), then reports diagnostics.
//
// Names. Every linear layer's input is stored under the layer's own name (e.g.
// model.layers.0.self_attn.q_proj), the key export and eval use for a layer's activation
// threshold. Layers that read the same buffer (q/k/v, gate/up: found by a probe forward
// pass) form a Group and are binned once; each member gets a copy of the group's
// histogram, so their thresholds are equal by construction.
//
// Scale. Rounds are fixed slices of the global window index, windows are assigned to
// shards by index % N, and any number of workers (one per GPU, or CPU engines) bin their
// own batches (sharing the model: its full-precision layers keep no state between calls);
// histograms merge exactly (calib's bin rule), so a sharded, multi-worker run
// gives the same histograms bit for bit as one worker on the whole stream. The state a
// run writes (State) records the number of windows as its batch count, so merged shards
// and one run produce the same table bytes.
//
// Diagnostics. After each round every tensor's threshold is recomputed from the
// cumulative histogram (and the entropy calibrator's minimal KL recorded); a tensor whose
// amax moved more than the tolerance in the last round is unsettled. Coverage (sequences,
// tokens, lengths, vocabulary share, top tokens, duplicates), clipping rates and outlier
// channels complete the Report; Plot draws histogram and convergence charts.
package calibrun
