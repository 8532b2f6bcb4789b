/** The TF.js modules a runner needs; imported lazily so that inspecting a model never pays for tfjs. */
export interface Tfjs {
  core: typeof import('@tensorflow/tfjs-core');
  layers: typeof import('@tensorflow/tfjs-layers');
  converter: typeof import('@tensorflow/tfjs-converter');
}

// a memoized import: it holds the modules and nothing else, once per thread as modules are
let loading: Promise<Tfjs> | undefined;

/** Import tfjs (core, layers, converter, and the cpu backend as the last resort) once per thread. */
export function loadTfjs(): Promise<Tfjs> {
  loading ??= (async () => {
    const [core, layers, converter] = await Promise.all([
      import('@tensorflow/tfjs-core'),
      import('@tensorflow/tfjs-layers'),
      import('@tensorflow/tfjs-converter'),
      import('@tensorflow/tfjs-backend-cpu'),
    ]);
    // tfjs-core prints its "Hi, looks like you are running TensorFlow.js in Node.js" banner the
    // first time the cpu backend stores a tensor, through a warn() that production mode silences;
    // layertap reports the backend it uses itself. Production mode changes nothing else in 4.x.
    core.env().set('PROD', true);
    return { core, layers, converter };
  })();
  return loading;
}
