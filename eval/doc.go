// Package eval measures a language model on text: perplexity, mean token negative
// log-likelihood, and, against a reference model (full precision), the top-1 agreement and
// the KL divergence of the next-token distributions; plus throughput.
//
// Data and windowing (the one rule every autoq command uses):
//
//   - A text file is split into paragraphs at blank lines. Each paragraph is one document:
//     its lines joined with "\n", its leading and trailing whitespace stripped (spaces at the
//     end of its last line, for example), then tokenized with a BOS token first
//     (tokenizer.Encode(p, true)), the way llama2.c pretokenizes each story
//     (text.strip(), then encode with BOS). A ".jsonl" file holds one JSON array of token ids per line,
//     used verbatim as a document (include BOS yourself).
//   - Split: "calib" keeps the documents that start in the first half of the file's bytes,
//     "eval" those that start in the second half, "all" everything, so calibration and
//     evaluation can use disjoint text of one file. SkipTokens then drops that many tokens
//     from the start of the stream.
//   - The documents are concatenated into one token stream, cut into consecutive
//     non-overlapping windows of SeqLen tokens (stride = SeqLen; the last window may be
//     shorter, down to 2 tokens). MaxTokens caps the stream (0 = no cap). Each window is an
//     independent sequence starting at position 0: no context is carried across windows.
//   - In each window, position p predicts token p+1 for p = 0..len-2. Targets that are BOS
//     (the start of the next document) are not scored. Perplexity is exp(mean NLL) over all
//     scored targets of all windows.
//
// KL(P_ref || P_q) = sum_v P_ref(v) (log P_ref(v) - log P_q(v)) in nats, averaged over the
// same scored positions; top-1 agreement is the share of those positions whose argmax
// agrees. Reductions are float64 in a fixed order, so results are deterministic.
package eval
