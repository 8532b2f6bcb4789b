import type { Command } from 'commander';
import { JobConfigError } from '../../config/errors.js';
import { HubError } from '../../models/hub/errors.js';
import type { HubModel } from '../../models/hub/resolve.js';
import { isHubUri } from '../../models/hub/uri.js';
import { formatInput } from '../../models/model-inputs.js';
import type { LayerInfo, ModuleInfo } from '../../models/types.js';
import { examples, fail, out, positiveInt, type SetExit } from '../common.js';

/** Columns padded to their widest cell; `right` holds the indices of right-aligned (numeric) ones. */
function columns(head: string[], rows: string[][], right: ReadonlySet<number>): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** Every layer or graph node: name, class/op, output shape, params (and the module an ONNX node belongs to). */
function printLayers(layers: LayerInfo[]): void {
  // ONNX exports from PyTorch name nodes after modules: show the path a tap can use
  const modules = layers.some((l) => l.module);
  const rows = layers.map((l) => [l.name, l.className, JSON.stringify(l.outputShape), String(l.params), ...(modules ? [l.module || '-'] : [])]);
  out(columns(['name', 'class', 'output shape', 'params', ...(modules ? ['module'] : [])], rows, new Set([3])));
  out(`${layers.length} layers, ${layers.reduce((a, l) => a + l.params, 0)} parameters`);
}

/** A node `model.precision: int8` rewrote: its weight product runs on int8. */
function isQuantized(l: LayerInfo): boolean {
  return l.className === 'com.microsoft.DynamicQuantizeMatMul';
}

/** int8: which nodes were quantized (by module when the tree was shown), and what stays fp32. */
function printQuantized(layers: LayerInfo[], tree: boolean): void {
  const q = layers.filter(isQuantized);
  if (tree) {
    const byModule = new Map<string, number>();
    for (const l of q) byModule.set(l.module ?? l.name, (byModule.get(l.module ?? l.name) ?? 0) + 1);
    out(`int8: ${q.length} nodes quantized (MatMul/Gemm with a weight -> DynamicQuantizeMatMul, int8 weights per output channel):`);
    for (const [m, n] of byModule) out(`  ${m || '(root)'}${n > 1 ? ` (${n} nodes)` : ''}`);
  } else {
    out(`int8: ${q.length} nodes quantized (class com.microsoft.DynamicQuantizeMatMul above)`);
  }
  out('int8: embeddings (Gather) and products of two activations (attention scores) stay fp32');
}

/** The module tree, indented by depth: the path a tap names, what it reads at output, its weights. */
function printModules(modules: ModuleInfo[], shown: ModuleInfo[]): void {
  const notes = shown.some((m) => m.note !== undefined);
  const rows = shown.map((m) => [
    `${'  '.repeat(m.depth)}${m.path}`,
    m.output === null ? '-' : m.outputShape === null ? '?' : JSON.stringify(m.outputShape),
    String(m.params),
    ...(notes ? [m.note ?? ''] : []),
  ]);
  out(columns(['module (what a tap names)', 'output shape', 'params', ...(notes ? ['note'] : [])], rows, new Set([2])));
  const top = modules.filter((m) => m.depth === 0).reduce((a, m) => a + m.params, 0);
  const hidden = modules.length - shown.length;
  out(`${modules.length} modules${hidden > 0 ? ` (${hidden} deeper ones not shown; see --depth)` : ''}, ${top} parameters`);
  out("a tap's layer: is a module path (at: output reads the shape shown); --nodes lists every graph node, which taps may name too");
}

/**
 * An hf: model fetched into the Hub cache as a job's would be; a model id that names nothing
 * (a repository, revision or ONNX file that is not there, a token it needs) is a usage error.
 */
async function hubModel(uri: string, file: string | undefined): Promise<HubModel> {
  const { resolveHubModel } = await import('../../models/hub/resolve.js');
  try {
    return await resolveHubModel(uri, file !== undefined ? { file } : {});
  } catch (err) {
    if (err instanceof HubError && err.retryable) throw err;
    throw new JobConfigError(err instanceof Error ? err.message : String(err));
  }
}

/** `layertap layers <model-uri>`: a model's inputs, then its module tree, or its layers/nodes. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('layers <model-uri>')
    .description(
      "list the model's inputs (name, dtype, dims), then what a tap may name: the module tree of a model exported from PyTorch (module path, output shape, params), else every layer/node (name, class/op, output shape, params)",
    )
    .addHelpText(
      'after',
      examples(
        'layertap layers test/fixtures/text-model/model.onnx --depth 2',
        'layertap layers builtin:mobilenet_v2 --json',
        'layertap layers hf:sentence-transformers/all-MiniLM-L6-v2 --depth 1',
      ),
    )
    .option('--file <path>', 'hf: models: the ONNX file in the repository (default onnx/model.onnx, else model.onnx), as model.file')
    .option('--nodes', 'list every graph node (name, op, output shape, params, module) instead of the module tree')
    .option('--depth <n>', 'module tree: only the modules this many levels deep or less (default: all)', positiveInt('--depth'))
    .option('--precision <mode>', 'fp32 (default) or int8: list the graph as model.precision runs it; int8 names the nodes it quantized')
    .option(
      '--json',
      'print one JSON object on stdout: {model, inputs, layers, modules} (and hub: {repo, revision, sha, file} for an hf: model; quantized: [node names] with --precision int8)',
    )
    .action(async (given: string, o: { file?: string; nodes?: boolean; depth?: number; json?: boolean; precision?: string }) => {
      try {
        if (o.precision !== undefined && o.precision !== 'fp32' && o.precision !== 'int8') {
          throw new JobConfigError(`--precision: '${o.precision}' is not a precision; choices: fp32, int8`);
        }
        const int8 = o.precision === 'int8';
        if (o.file !== undefined && !isHubUri(given)) throw new JobConfigError(`--file picks the ONNX file of an hf: model; '${given}' names its file itself`);
        const hub = isHubUri(given) ? await hubModel(given, o.file) : null;
        const uri = hub?.model ?? given;
        const { listLayers, listModules, modelInputs } = await import('../../models/registry.js');
        const inputs = await modelInputs(uri);
        if (int8 && !/\.onnx$/i.test(uri)) throw new JobConfigError(`--precision int8: runs ONNX models only; ${given} is not one`);
        const layersOf = () => listLayers(uri, int8 ? { precision: 'int8' } : {});
        if (o.json) {
          const [layers, modules] = [await layersOf(), await listModules(uri)];
          const from = hub ? { hub: { repo: hub.repo, revision: hub.revision, sha: hub.sha, file: hub.file } } : {};
          const quantized = int8 ? { quantized: layers.filter(isQuantized).map((l) => l.name) } : {};
          out(JSON.stringify({ model: given, ...from, inputs, layers, modules, ...quantized }));
          return;
        }
        if (hub) out(`model ${given}: ${hub.file} at commit ${hub.sha} (${hub.model})`);
        const modules = o.nodes ? [] : await listModules(uri);
        for (const input of inputs) out(`input ${formatInput(input)}`);
        if (modules.length > 0) printModules(modules, o.depth === undefined ? modules : modules.filter((m) => m.depth < o.depth!));
        else printLayers(await layersOf());
        if (int8) printQuantized(await layersOf(), modules.length > 0);
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
