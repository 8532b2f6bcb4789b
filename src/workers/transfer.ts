/**
 * Buffers that can be handed to another thread without copying. A view that shares its
 * ArrayBuffer with other data (a slice of a bigger buffer, Node's pooled Buffers) is copied
 * first: transferring it would detach the neighbours too.
 */
export function ownBuffer<T extends Float32Array | Uint16Array | Uint8Array>(view: T): T {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && !(view.buffer instanceof SharedArrayBuffer)) {
    return view;
  }
  return view.slice() as T;
}

/** Distinct ArrayBuffers behind the views (a buffer listed twice makes postMessage throw). */
export function transferList(views: ReadonlyArray<ArrayBufferView>): ArrayBuffer[] {
  const set = new Set<ArrayBuffer>();
  for (const v of views) if (v.buffer instanceof ArrayBuffer && v.buffer.byteLength > 0) set.add(v.buffer);
  return [...set];
}
