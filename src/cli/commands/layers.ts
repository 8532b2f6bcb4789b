import type { Command } from 'commander';
import { formatInput } from '../../models/model-inputs.js';
import { fail, out, type SetExit } from '../common.js';

/** `layertap layers <model-uri>`: list a model's layers or graph nodes. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('layers <model-uri>')
    .description("list the model's inputs (name, dtype, dims), then every layer/node: name, class/op, output shape, parameters")
    .option('--json', 'print one JSON object on stdout')
    .action(async (uri: string, o: { json?: boolean }) => {
      try {
        const { listLayers, modelInputs } = await import('../../models/registry.js');
        const inputs = await modelInputs(uri);
        const layers = await listLayers(uri);
        if (o.json) {
          out(JSON.stringify({ model: uri, inputs, layers }));
          return;
        }
        for (const input of inputs) out(`input ${formatInput(input)}`);
        // ONNX exports from PyTorch name nodes after modules: show the path a tap can use
        const modules = layers.some((l) => l.module);
        const rows = layers.map((l) => [l.name, l.className, JSON.stringify(l.outputShape), String(l.params), ...(modules ? [l.module || '-'] : [])]);
        const head = ['name', 'class', 'output shape', 'params', ...(modules ? ['module'] : [])];
        const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const fmt = (r: string[]) =>
          r
            .map((c, i) => (i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
            .join('  ')
            .trimEnd();
        out([fmt(head), ...rows.map(fmt)].join('\n'));
        out(`${layers.length} layers, ${layers.reduce((a, l) => a + l.params, 0)} parameters`);
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
