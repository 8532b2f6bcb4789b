#!/usr/bin/env node
// The transformers.js peer of the text bench: what a Node.js user writes without layertap.
// pipeline('feature-extraction') on the bench's MiniLM-sized encoder at fp32, batches of 32 rows
// in source order, mean pooling over the real tokens (no normalisation); the vectors go to a
// .f32 file (rows in source order, row i = line i) so that the bench can compare them with
// layertap's. One whole process per measurement: the bench times it from spawn to exit.
//
//   ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/results/peers @huggingface/transformers   # not a project dependency
//   (the skip: onnxruntime-node's install script fetches the CUDA provider from api.nuget.org otherwise)
//   node bench/peers/transformers-js.mjs --rows 768 --threads 2 --out /tmp/tjs [--model-dir DIR] [--sentences FILE]
//
// The package is loaded from bench/results/peers (gitignored), never from the project's
// node_modules. It reads the model from a folder in the layout it expects (config.json,
// tokenizer.json, tokenizer_config.json, onnx/model.onnx) under
// bench/results/peers/models/text-encoder: links to the model and tokenizer.json of
// bench/results/text-encoder, a config.json for BertModel and its tokenizer_config.json with
// the special tokens named. Nothing is downloaded: env.allowRemoteModels is false. stdout: one JSON object (rows, dim, files,
// seconds inside the process, versions, threads).
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const t0 = performance.now();
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PEERS = path.join(ROOT, 'bench', 'results', 'peers');
const SOURCE = path.join(ROOT, 'bench', 'results', 'text-encoder');
const MODELS = path.join(PEERS, 'models');
const NAME = 'text-encoder';
const BATCH = 32;

/** The folder transformers.js reads `NAME` from, linked to the bench's files (made once). */
async function modelFolder(source) {
  const dir = path.join(MODELS, NAME);
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  const link = async (from, to) => {
    if (!existsSync(to)) await symlink(path.resolve(from), to);
  };
  await link(path.join(source, 'model.onnx'), path.join(dir, 'onnx', 'model.onnx'));
  await link(path.join(source, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  // bench/export-text-encoder.py's architecture (BertModel, random weights)
  const config = {
    model_type: 'bert',
    architectures: ['BertModel'],
    hidden_size: 384,
    num_hidden_layers: 6,
    num_attention_heads: 12,
    intermediate_size: 1536,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: Object.keys(JSON.parse(await readFile(path.join(source, 'tokenizer.json'), 'utf8')).model.vocab).length,
    pad_token_id: 0,
  };
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const tokenizerConfig = JSON.parse(await readFile(path.join(source, 'tokenizer_config.json'), 'utf8'));
  const special = { pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]' };
  await writeFile(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify({ ...special, ...tokenizerConfig }, null, 2)}\n`);
  return dir;
}

function parseArgs(argv) {
  const opts = { rows: 4000, threads: undefined, out: undefined, modelDir: SOURCE, sentences: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === '--rows') opts.rows = Number(v);
    else if (a === '--threads') opts.threads = Number(v);
    else if (a === '--out') opts.out = v;
    else if (a === '--model-dir') opts.modelDir = v;
    else if (a === '--sentences') opts.sentences = v;
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!opts.out) throw new Error('--out PREFIX is required (PREFIX.f32 gets the vectors)');
  opts.sentences ??= path.join(opts.modelDir, 'sentences.txt');
  return opts;
}

/** `@huggingface/transformers` as installed under bench/results/peers, or null. */
export function peerEntry() {
  const file = path.join(PEERS, 'node_modules', '@huggingface', 'transformers', 'package.json');
  return existsSync(file) ? file : null;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pkg = peerEntry();
  if (!pkg)
    throw new Error(
      `@huggingface/transformers is not installed: ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix ${path.relative(process.cwd(), PEERS) || '.'} @huggingface/transformers`,
    );
  // onnxruntime-node as transformers.js resolves it (its own dependency, not the project's)
  const from = createRequire(pkg);
  const version = async (name) => {
    let dir = path.dirname(name === '@huggingface/transformers' ? pkg : from.resolve(name));
    while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) !== name.split('/').pop()) dir = path.dirname(dir);
    return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')).version;
  };
  const versions = { '@huggingface/transformers': await version('@huggingface/transformers'), 'onnxruntime-node': await version('onnxruntime-node') };
  const { env, pipeline } = await import(pathToFileURL(path.join(path.dirname(pkg), 'dist', 'transformers.node.mjs')).href);
  const dir = await modelFolder(opts.modelDir);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(dir);
  // onnxruntime-node's defaults otherwise: intra-op threads = its own choice (physical cores),
  // sequential execution; set intra-op to what layertap gets, inter-op to 1 as layertap does
  const sessionOptions = opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {};
  const extractor = await pipeline('feature-extraction', NAME, { dtype: 'fp32', device: 'cpu', session_options: sessionOptions });
  const lines = (await readFile(opts.sentences, 'utf8')).split('\n').slice(0, opts.rows);
  if (lines.length < opts.rows) throw new Error(`${opts.sentences} has ${lines.length} lines, fewer than --rows ${opts.rows}`);
  const tLoaded = performance.now();
  let dim = 0;
  let vectors = null;
  for (let start = 0; start < lines.length; start += BATCH) {
    const out = await extractor(lines.slice(start, start + BATCH), { pooling: 'mean', normalize: false });
    dim = out.dims[1];
    vectors ??= new Float32Array(lines.length * dim);
    vectors.set(out.data, start * dim);
  }
  const tDone = performance.now();
  await writeFile(`${opts.out}.f32`, new Uint8Array(vectors.buffer));
  await extractor.dispose();
  process.stdout.write(
    `${JSON.stringify({
      rows: lines.length,
      dim,
      vectors: `${opts.out}.f32`,
      ids: 'row i of the .f32 file is line i of the sentences',
      batch: BATCH,
      threads: opts.threads ?? null,
      sessionOptions,
      versions,
      seconds: { load: (tLoaded - t0) / 1000, embed: (tDone - tLoaded) / 1000, total: (performance.now() - t0) / 1000 },
    })}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}
