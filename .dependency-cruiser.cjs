/**
 * The layers of src/ (docs/architecture.md): a folder may import the folders below it in this
 * list, never one above it. `config` (the job-file schema) and `types` (the shared vocabulary)
 * are at the bottom, so every layer may use them.
 */
const LAYERS = ['cli', 'ops', 'queue', 'pipeline', 'workers', 'preprocess', 'models', 'sources', 'sinks', 'storage', 'config', 'types'];

const upward = LAYERS.map((layer, i) => ({
  name: `no-upward-from-${layer}`,
  comment: `src/${layer} may import only ${LAYERS.slice(i + 1).join(', ') || 'nothing of src'} (the layers below it)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(0, i).concat(['index\\.ts$']).join('|')})` },
}));

module.exports = {
  forbidden: [
    ...upward.filter((r) => r.name !== 'no-upward-from-cli'),
    {
      name: 'sources-and-sinks-apart',
      comment: 'reading a dataset and writing features share only storage/ (and config, types), never each other',
      severity: 'error',
      from: { path: '^src/sources/' },
      to: { path: '^src/sinks/' },
    },
    {
      name: 'runtimes-apart',
      comment: 'a model runtime is its folder of models/ (onnx/, tfjs/): it imports the shared model code, never another runtime',
      severity: 'error',
      from: { path: '^src/models/([^/]+)/' },
      to: { path: '^src/models/[^/]+/', pathNot: '^src/models/$1/' },
    },
    {
      name: 'shared-model-code-apart-from-runtimes',
      comment: 'the model contract, reductions and inputs serve every runtime: only the registry (one line per runtime) and the barrel name one',
      severity: 'error',
      from: { path: '^src/models/[^/]+\\.ts$', pathNot: '^src/models/(registry|index)\\.ts$' },
      to: { path: '^src/models/[^/]+/' },
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other cannot be understood or tested one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'a module nothing imports is dead code (entry points aside)',
      severity: 'error',
      from: { orphan: true, path: '^src/', pathNot: ['^src/index\\.ts$', '^src/cli/main\\.ts$', '^src/cli/huge-pages\\.ts$', '^src/workers/thread\\.ts$', '^src/workers/scan-thread\\.ts$', '\\.d\\.ts$'] },
      to: {},
    },
    {
      name: 'only-known-folders',
      comment: 'every module of src/ belongs to one of the layers',
      severity: 'error',
      from: { path: '^src/', pathNot: [`^src/(${LAYERS.join('|')})/`, '^src/(index|version)\\.ts$'] },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
