// ppl.mjs: llama.cpp (node-llama-cpp, CPU) as an independent scorer and benchmark for
// autoq's GGUF files. Reads one JSON request on stdin, writes one JSON answer on stdout.
//
//   {"mode":"logprobs","model":PATH,"windows":[[ids...],...],"threads":1}
//     -> {"logprobs":[[lp...],...]}: lp[p] = ln P(window[p+1] | window[0..p]) from the full
//        softmax at temperature 0 (controlledEvaluate, generateNext.probabilities). Exact
//        settings: F32 KV cache, flash attention off, `threads` threads (1 by default), and
//        ONE window per context sequence at a time (the history is cleared between windows;
//        several sequences in one context gave wrong, run-to-run different numbers).
//   {"mode":"tokenize","model":PATH,"texts":[...]}  -> {"tokens":[[ids...],...]} (no BOS)
//   {"mode":"bench","model":PATH,"prompt":N,"generate":M,"threads":T,"repeats":R}
//     -> {"prompt_tps":..,"generate_tps":..}: best of R runs of prompt processing (one batch
//        of N tokens) and greedy generation of M tokens.
// The package lives in .llamacpp/ (scripts/llamacpp/install.sh) or $AUTOQ_LLAMACPP_DIR.
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = process.env.AUTOQ_LLAMACPP_DIR || path.join(here, "..", "..", ".llamacpp");
const {getLlama} = await import(pathToFileURL(path.join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", progressLogs: false});
const model = await llama.loadModel({modelPath: req.model});
const out = {};

async function context(size, batch, threads) {
  return model.createContext({
    contextSize: size, batchSize: batch, sequences: 1, flashAttention: false, threads,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
  });
}

if (req.mode === "logprobs") {
  const longest = Math.max(...req.windows.map((w) => w.length));
  const ctx = await context(Math.max(longest, 8), Math.max(longest, 8), req.threads ?? 1);
  const seq = ctx.getSequence();
  out.logprobs = [];
  for (const w of req.windows) {
    await seq.clearHistory();
    const input = w.map((t, i) => i < w.length - 1
      ? [t, {generateNext: {probabilities: true, options: {temperature: 0}}}] : t);
    const res = await seq.controlledEvaluate(input);
    const lp = [];
    for (let i = 0; i < w.length - 1; i++) {
      const p = res[i]?.next?.probabilities?.get(w[i + 1]);
      lp.push(p > 0 ? Math.log(p) : null);
    }
    out.logprobs.push(lp);
  }
  await ctx.dispose();
} else if (req.mode === "tokenize") {
  out.tokens = req.texts.map((t) => Array.from(model.tokenize(t)));
} else if (req.mode === "bench") {
  const n = req.prompt, m = req.generate;
  const tokens = Array.from({length: n}, (_, i) => 3 + ((i * 7919) % 200));
  let pp = 0, tg = 0;
  for (let r = 0; r < (req.repeats ?? 3); r++) {
    const ctx = await context(n + m + 8, n, req.threads ?? 0);
    const seq = ctx.getSequence();
    let t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(tokens);
    pp = Math.max(pp, n / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    let k = 0;
    for await (const _ of seq.evaluate([tokens[n - 1]], {temperature: 0})) {
      if (++k >= m) break;
    }
    tg = Math.max(tg, k / ((performance.now() - t0) / 1000));
    await ctx.dispose();
  }
  out.prompt_tps = pp;
  out.generate_tps = tg;
  out.threads = req.threads ?? 0;
} else {
  throw new Error(`unknown mode ${req.mode}`);
}
await model.dispose();
process.stdout.write(JSON.stringify(out) + "\n");
