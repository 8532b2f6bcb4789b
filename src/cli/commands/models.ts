import type { Command } from 'commander';
import { BUILTIN_MODELS } from '../../models/tfjs/builtin.js';
import { examples, out, type SetExit } from '../common.js';

/** `layertap models`: the pretrained models `builtin:<name>` names, which ship with an npm dependency. */
export function register(program: Command, _setExit: SetExit): void {
  program
    .command('models')
    .description('list the built-in models (model.uri: builtin:<name>): what each is, its input, the layer that holds its pooled features')
    .addHelpText('after', examples('layertap models'))
    .option('--json', 'print one JSON object on stdout')
    .action((o: { json?: boolean }) => {
      const models = BUILTIN_MODELS.map((m) => ({
        uri: `builtin:${m.name}`,
        format: m.format,
        inputShape: m.inputShape,
        inputRange: m.inputRange,
        featureLayer: m.featureLayer,
        featureSize: m.featureSize,
        description: m.description,
        license: m.license,
        source: m.source,
      }));
      if (o.json) {
        out(JSON.stringify({ models }));
        return;
      }
      const lines: string[] = [];
      for (const m of models) {
        lines.push(`${m.uri}  (${m.format}; input ${m.inputShape.join('x')} RGB, pixels scaled to [${m.inputRange.join(', ')}])`);
        lines.push(`  ${m.description}`);
        lines.push(`  pooled features: layer ${m.featureLayer} (${m.featureSize} values)`);
      }
      const licences = [...new Set(models.map((m) => `${m.license}; ${m.source}`))];
      lines.push(`weights: ${licences.join('; ')}`);
      lines.push('use one as model.uri: builtin:<name>; `layertap layers builtin:<name>` lists every layer a tap may name');
      out(lines.join('\n'));
    });
}
