import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs/minimal.js';
import { SEED_DIR, tempDir } from './models.js';

export const SEED_ONNX = path.join(SEED_DIR, 'seed_model.onnx');

export { SEED_LEAVES } from './index.js';

/** A writable copy of the seed ONNX model in a fresh temp directory. */
export function copySeedOnnx(): string {
  const file = path.join(tempDir('layertap-onnx-'), 'seed_model.onnx');
  copyFileSync(SEED_ONNX, file);
  chmodSync(file, 0o644);
  return file;
}

/** Byte offset of the first occurrence of `needle` in `hay`, or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength));
}

/** Flip one bit of the first value of a weight, found by its bytes (the PyTorch state_dict copy in weights/). */
export function flipWeightBit(file: string, weightNpy = 'conv_32.0.weight.npy'): void {
  const npy = readFileSync(path.join(SEED_DIR, 'weights', weightNpy));
  const headerLen = npy.readUInt16LE(8);
  const values = npy.subarray(10 + headerLen, 10 + headerLen + 64);
  const bytes = readFileSync(file);
  const at = indexOfBytes(bytes, values);
  if (at < 0) throw new Error(`weight ${weightNpy} not found in ${file}`);
  bytes[at + 1]! ^= 0x01;
  writeFileSync(file, bytes);
}

// --- a tiny ModelProto writer for graphs the fixtures do not cover ---

type Dim = number | string;

export interface TinyNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  /** tensor attributes (a Constant's `value`), and graph attributes given as a subgraph's initializers */
  attributes?: { name: string; tensor?: TinyInitializer; graph?: TinyInitializer[] }[];
}

export interface TinyInitializer {
  name: string;
  dims: number[];
  values: number[];
  /** store the values in this file next to the model instead of inside it */
  external?: string;
  /** the location recorded in the model, when it should differ from the file written */
  location?: string;
}

export interface TinyModel {
  input: { name: string; dims: Dim[]; elemType?: number };
  /** more graph inputs (elemType 1 = float32 unless given) */
  extraInputs?: { name: string; dims: Dim[]; elemType?: number }[];
  outputs: { name: string; dims: Dim[] }[];
  nodes: TinyNode[];
  initializers?: TinyInitializer[];
}

const LEN = 2;
const VARINT = 0;

function message(build: (w: protobuf.Writer) => void): Uint8Array {
  const w = protobuf.Writer.create();
  build(w);
  return w.finish();
}

function valueInfo(name: string, dims: Dim[], elemType = 1): Uint8Array {
  const shape = message((w) => {
    for (const d of dims) {
      const dim = message((dw) => (typeof d === 'number' ? dw.uint32((1 << 3) | VARINT).int64(d) : dw.uint32((2 << 3) | LEN).string(d)));
      w.uint32((1 << 3) | LEN).bytes(dim);
    }
  });
  const tensorType = message((w) =>
    w
      .uint32((1 << 3) | VARINT)
      .int32(elemType)
      .uint32((2 << 3) | LEN)
      .bytes(shape),
  );
  const type = message((w) => w.uint32((1 << 3) | LEN).bytes(tensorType));
  return message((w) =>
    w
      .uint32((1 << 3) | LEN)
      .string(name)
      .uint32((2 << 3) | LEN)
      .bytes(type),
  );
}

/**
 * Encode a float32 ONNX model (opset 13). Initializers marked `external` are written to that file
 * in `dir` (one file per initializer) and referenced by location, as onnx.save(..., save_as_external_data=True) does.
 */
export function buildOnnx(model: TinyModel, dir?: string): Uint8Array {
  const initializer = (init: TinyInitializer): Uint8Array =>
    message((w) => {
      for (const d of init.dims) w.uint32((1 << 3) | VARINT).int64(d);
      w.uint32((2 << 3) | VARINT).int32(1);
      w.uint32((8 << 3) | LEN).string(init.name);
      const raw = new Uint8Array(Float32Array.from(init.values).buffer);
      if (init.external === undefined) {
        w.uint32((9 << 3) | LEN).bytes(raw);
        return;
      }
      if (dir === undefined) throw new Error('external initializers need a directory');
      writeFileSync(path.join(dir, init.external), raw);
      const entry = (k: string, v: string) =>
        message((ew) =>
          ew
            .uint32((1 << 3) | LEN)
            .string(k)
            .uint32((2 << 3) | LEN)
            .string(v),
        );
      w.uint32((13 << 3) | LEN).bytes(entry('location', init.location ?? init.external));
      w.uint32((13 << 3) | LEN).bytes(entry('offset', '0'));
      w.uint32((13 << 3) | LEN).bytes(entry('length', String(raw.byteLength)));
      w.uint32((14 << 3) | VARINT).int32(1);
    });
  const attribute = (a: NonNullable<TinyNode['attributes']>[number]): Uint8Array =>
    message((w) => {
      w.uint32((1 << 3) | LEN).string(a.name);
      if (a.tensor)
        w.uint32((5 << 3) | LEN)
          .bytes(initializer(a.tensor))
          .uint32((20 << 3) | VARINT)
          .int32(4);
      if (a.graph) {
        const inits = a.graph;
        const sub = message((gw) => {
          gw.uint32((2 << 3) | LEN).string(`${a.name}_graph`);
          for (const init of inits) gw.uint32((5 << 3) | LEN).bytes(initializer(init));
        });
        w.uint32((6 << 3) | LEN)
          .bytes(sub)
          .uint32((20 << 3) | VARINT)
          .int32(5);
      }
    });
  const graph = message((w) => {
    for (const n of model.nodes) {
      const node = message((nw) => {
        for (const i of n.inputs) nw.uint32((1 << 3) | LEN).string(i);
        for (const o of n.outputs) nw.uint32((2 << 3) | LEN).string(o);
        nw.uint32((3 << 3) | LEN)
          .string(n.name)
          .uint32((4 << 3) | LEN)
          .string(n.op);
        for (const a of n.attributes ?? []) nw.uint32((5 << 3) | LEN).bytes(attribute(a));
      });
      w.uint32((1 << 3) | LEN).bytes(node);
    }
    w.uint32((2 << 3) | LEN).string('tiny');
    for (const init of model.initializers ?? []) w.uint32((5 << 3) | LEN).bytes(initializer(init));
    w.uint32((11 << 3) | LEN).bytes(valueInfo(model.input.name, model.input.dims, model.input.elemType));
    for (const i of model.extraInputs ?? []) w.uint32((11 << 3) | LEN).bytes(valueInfo(i.name, i.dims, i.elemType));
    for (const o of model.outputs) w.uint32((12 << 3) | LEN).bytes(valueInfo(o.name, o.dims));
  });
  const opset = message((w) =>
    w
      .uint32((1 << 3) | LEN)
      .string('')
      .uint32((2 << 3) | VARINT)
      .int64(13),
  );
  return message((w) =>
    w
      .uint32((1 << 3) | VARINT)
      .int64(7)
      .uint32((2 << 3) | LEN)
      .string('layertap-test')
      .uint32((7 << 3) | LEN)
      .bytes(graph)
      .uint32((8 << 3) | LEN)
      .bytes(opset),
  );
}

/** y = relu(x @ W) with x [batch, 2], W [2, 3], as a module 'lin' (MatMul) then 'act' (Relu). */
export function tinyLinear(opts: { batch?: Dim; external?: string } = {}): TinyModel {
  return {
    input: { name: 'x', dims: [opts.batch ?? 'batch', 2] },
    outputs: [{ name: 'y', dims: [opts.batch ?? 'batch', 3] }],
    nodes: [
      { name: '/lin/MatMul', op: 'MatMul', inputs: ['x', 'lin.weight'], outputs: ['/lin/MatMul_output_0'] },
      { name: '/act/Relu', op: 'Relu', inputs: ['/lin/MatMul_output_0'], outputs: ['y'] },
    ],
    initializers: [{ name: 'lin.weight', dims: [2, 3], values: [1, -1, 2, 0.5, 1, -3], ...(opts.external ? { external: opts.external } : {}) }],
  };
}

/** The tiny model's pre-activation x @ W for rows of x. */
export function tinyMatMul(x: number[][]): number[][] {
  const w = [
    [1, -1, 2],
    [0.5, 1, -3],
  ];
  return x.map((r) => [0, 1, 2].map((j) => (r[0] ?? 0) * (w[0]?.[j] ?? 0) + (r[1] ?? 0) * (w[1]?.[j] ?? 0)));
}

/**
 * z = x + y over two inputs, [batch, 2] each, exported with a fixed batch when `batch` is a
 * number: node 'sum' (Add) and its output 'z'.
 */
export function tinyAdd(batch: Dim = 'batch'): TinyModel {
  return {
    input: { name: 'x', dims: [batch, 2] },
    extraInputs: [{ name: 'y', dims: [batch, 2] }],
    outputs: [{ name: 'z', dims: [batch, 2] }],
    nodes: [{ name: 'sum', op: 'Add', inputs: ['x', 'y'], outputs: ['z'] }],
  };
}
