/** The parquet-wasm module, which both table sources and Parquet sinks read and write with. */
export type ParquetWasm = typeof import('parquet-wasm');

/**
 * parquet-wasm compiles a few MB of WebAssembly on import: it is loaded on first use, only by
 * jobs that read or write Parquet (the module loader keeps the one instance).
 */
export function loadParquetWasm(): Promise<ParquetWasm> {
  return import('parquet-wasm');
}
