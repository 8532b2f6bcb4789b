/**
 * Node options of pool threads: the process's own, and no require() of ES modules. Piscina loads
 * a thread's module with require() first; on Node 20 that require of an ES module aborts the
 * process now and then ("v8::Module::IsGraphAsync must be used on an instantiated module").
 * Without it Piscina falls back to import(). Node versions without the option are left as they are.
 */
export function threadExecArgv(): string[] {
  const flag = '--no-experimental-require-module';
  return process.allowedNodeEnvironmentFlags.has(flag) ? [...process.execArgv, flag] : [...process.execArgv];
}
