import protobuf from 'protobufjs/minimal.js';

// Field numbers of onnx.proto (onnx/onnx, IR version 10). Only what layertap reads is decoded;
// every other field is skipped on reading and kept byte for byte when outputs are added.
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;
const OPSET = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, domain: 7 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIM = { value: 1, param: 2 } as const;
const TENSOR = { dims: 1, dataType: 2, name: 8, externalData: 13, dataLocation: 14 } as const;
const ENTRY = { key: 1, value: 2 } as const;
// where TensorProtos can stand besides the main graph's initializers
const MODEL_MORE = { trainingInfo: 20, functions: 25 } as const;
const TRAINING_INFO = { initialization: 1, algorithm: 2 } as const;
const FUNCTION = { node: 7 } as const;
const GRAPH_MORE = { sparseInitializer: 15 } as const;
const NODE_MORE = { attribute: 5 } as const;
const ATTRIBUTE = { t: 5, g: 6, tensors: 10, graphs: 11, sparseTensor: 22, sparseTensors: 23 } as const;
const SPARSE_TENSOR = { values: 1, indices: 2 } as const;
/** deeper nesting than any real model has; a hostile file must not exhaust the stack */
const MAX_GRAPH_DEPTH = 64;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const EXTERNAL = 1;

/** ONNX TensorProto.DataType values layertap names in messages. */
export const ONNX_ELEM_TYPES: Readonly<Record<number, string>> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};
export const ONNX_FLOAT = 1;

/** A graph input, output or value_info entry: a tensor name with its type and shape when declared. */
export interface OnnxValueInfo {
  name: string;
  /** TensorProto.DataType, null when not a tensor or not declared */
  elemType: number | null;
  /** per axis: a size, a symbolic name (e.g. 'batch'), or null when unknown; null when no shape is declared */
  shape: (number | string | null)[] | null;
}

/** One node of the main graph. */
export interface OnnxNode {
  /** may be empty: ONNX does not require node names */
  name: string;
  opType: string;
  domain: string;
  /** input tensor names; '' marks an omitted optional input */
  inputs: string[];
  outputs: string[];
}

/** A weight of the graph, with where its bytes live when they are outside the .onnx file. */
export interface OnnxInitializer {
  name: string;
  dims: number[];
  dataType: number;
  /** set for data_location EXTERNAL: a path relative to the model file, and the byte range */
  external: { location: string; offset: number; length: number | null } | null;
}

/** The main graph of an ONNX model (subgraphs of If/Loop nodes are not read). */
export interface OnnxGraph {
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
  initializers: OnnxInitializer[];
}

/** What layertap reads of an ONNX ModelProto. */
export interface OnnxModel {
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  graph: OnnxGraph;
  /**
   * every tensor whose bytes live outside the .onnx file, wherever it stands: initializers of the
   * main graph and of subgraphs, Constant and other node attributes, sparse tensors, functions and
   * training graphs; the runtime would read each of them, so each must pass the path checks
   */
  externalTensors: OnnxInitializer[];
}

type Reader = protobuf.Reader;

class OnnxFormatError extends Error {
  constructor(source: string, what: string) {
    super(`invalid ONNX model ${source}: ${what}`);
    this.name = 'OnnxFormatError';
  }
}

/** A varint int64 as a JS number (exact up to 2^53, which every size and dimension is). */
function toNumber(value: number | protobuf.Long): number {
  if (typeof value === 'number') return value;
  return (value.unsigned ? value.high >>> 0 : value.high) * 2 ** 32 + (value.low >>> 0);
}

/** Call `onField` for every field of the message in `bytes`; it must consume the value or return false to skip it. */
function eachField(bytes: Uint8Array, onField: (field: number, wire: number, r: Reader) => boolean): void {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new Error(`field number 0 at byte ${r.pos}`);
    if (!onField(field, wire, r)) r.skipType(wire);
  }
}

/** Read a repeated int64 that may be packed (proto3 default) or not. */
function readInt64s(wire: number, r: Reader, into: number[]): void {
  if (wire === WIRE_LEN) {
    const end = r.uint32() + r.pos;
    while (r.pos < end) into.push(toNumber(r.int64()));
  } else {
    into.push(toNumber(r.int64()));
  }
}

function parseDim(bytes: Uint8Array): number | string | null {
  let dim: number | string | null = null;
  eachField(bytes, (field, wire, r) => {
    if (field === DIM.value && wire === WIRE_VARINT) dim = toNumber(r.int64());
    else if (field === DIM.param && wire === WIRE_LEN) dim = r.string() || null;
    else return false;
    return true;
  });
  return dim;
}

function parseValueInfo(bytes: Uint8Array): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', elemType: null, shape: null };
  eachField(bytes, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false;
    if (field === VALUE_INFO.name) {
      info.name = r.string();
      return true;
    }
    if (field !== VALUE_INFO.type) return false;
    eachField(r.bytes(), (tf, tw, tr) => {
      if (tf !== TYPE.tensorType || tw !== WIRE_LEN) return false;
      eachField(tr.bytes(), (f, w, rr) => {
        if (f === TENSOR_TYPE.elemType && w === WIRE_VARINT) info.elemType = rr.int32();
        else if (f === TENSOR_TYPE.shape && w === WIRE_LEN) {
          const shape: (number | string | null)[] = [];
          eachField(rr.bytes(), (sf, sw, sr) => {
            if (sf !== SHAPE.dim || sw !== WIRE_LEN) return false;
            shape.push(parseDim(sr.bytes()));
            return true;
          });
          info.shape = shape;
        } else return false;
        return true;
      });
      return true;
    });
    return true;
  });
  return info;
}

function parseNode(bytes: Uint8Array): OnnxNode {
  const node: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [] };
  eachField(bytes, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false;
    if (field === NODE.input) node.inputs.push(r.string());
    else if (field === NODE.output) node.outputs.push(r.string());
    else if (field === NODE.name) node.name = r.string();
    else if (field === NODE.opType) node.opType = r.string();
    else if (field === NODE.domain) node.domain = r.string();
    else return false;
    return true;
  });
  return node;
}

function parseInitializer(bytes: Uint8Array): OnnxInitializer {
  const init: OnnxInitializer = { name: '', dims: [], dataType: 0, external: null };
  const entries = new Map<string, string>();
  let location = 0;
  eachField(bytes, (field, wire, r) => {
    if (field === TENSOR.dims) readInt64s(wire, r, init.dims);
    else if (field === TENSOR.dataType && wire === WIRE_VARINT) init.dataType = r.int32();
    else if (field === TENSOR.name && wire === WIRE_LEN) init.name = r.string();
    else if (field === TENSOR.dataLocation && wire === WIRE_VARINT) location = r.int32();
    else if (field === TENSOR.externalData && wire === WIRE_LEN) {
      let key = '';
      let value = '';
      eachField(r.bytes(), (f, w, er) => {
        if (w !== WIRE_LEN) return false;
        if (f === ENTRY.key) key = er.string();
        else if (f === ENTRY.value) value = er.string();
        else return false;
        return true;
      });
      entries.set(key, value);
    } else return false;
    return true;
  });
  if (location === EXTERNAL) {
    const length = entries.get('length');
    init.external = {
      location: entries.get('location') ?? '',
      offset: Number(entries.get('offset') ?? 0),
      length: length === undefined ? null : Number(length),
    };
  }
  return init;
}

function parseGraph(bytes: Uint8Array, graph: OnnxGraph): void {
  eachField(bytes, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false;
    if (field === GRAPH.node) graph.nodes.push(parseNode(r.bytes()));
    else if (field === GRAPH.initializer) graph.initializers.push(parseInitializer(r.bytes()));
    else if (field === GRAPH.input) graph.inputs.push(parseValueInfo(r.bytes()));
    else if (field === GRAPH.output) graph.outputs.push(parseValueInfo(r.bytes()));
    else if (field === GRAPH.valueInfo) graph.valueInfo.push(parseValueInfo(r.bytes()));
    else return false;
    return true;
  });
}

/** Every external-data tensor under a message of `kind`, at any depth. */
function collectExternal(
  bytes: Uint8Array,
  kind: 'model' | 'graph' | 'node' | 'attribute' | 'sparse' | 'function' | 'training',
  into: OnnxInitializer[],
  depth = 0,
): void {
  if (depth > MAX_GRAPH_DEPTH) throw new Error(`subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels`);
  const tensor = (r: Reader) => {
    const t = parseInitializer(r.bytes());
    if (t.external !== null) into.push(t);
  };
  const walk = (r: Reader, inner: Parameters<typeof collectExternal>[1]) => collectExternal(r.bytes(), inner, into, depth + 1);
  eachField(bytes, (field, wire, r) => {
    if (wire !== WIRE_LEN) return false;
    switch (kind) {
      case 'model':
        if (field === MODEL.graph) walk(r, 'graph');
        else if (field === MODEL_MORE.trainingInfo) walk(r, 'training');
        else if (field === MODEL_MORE.functions) walk(r, 'function');
        else return false;
        return true;
      case 'training':
        if (field !== TRAINING_INFO.initialization && field !== TRAINING_INFO.algorithm) return false;
        walk(r, 'graph');
        return true;
      case 'function':
        if (field !== FUNCTION.node) return false;
        walk(r, 'node');
        return true;
      case 'graph':
        if (field === GRAPH.initializer) tensor(r);
        else if (field === GRAPH_MORE.sparseInitializer) walk(r, 'sparse');
        else if (field === GRAPH.node) walk(r, 'node');
        else return false;
        return true;
      case 'node':
        if (field !== NODE_MORE.attribute) return false;
        walk(r, 'attribute');
        return true;
      case 'attribute':
        if (field === ATTRIBUTE.t || field === ATTRIBUTE.tensors) tensor(r);
        else if (field === ATTRIBUTE.g || field === ATTRIBUTE.graphs) walk(r, 'graph');
        else if (field === ATTRIBUTE.sparseTensor || field === ATTRIBUTE.sparseTensors) walk(r, 'sparse');
        else return false;
        return true;
      case 'sparse':
        if (field !== SPARSE_TENSOR.values && field !== SPARSE_TENSOR.indices) return false;
        tensor(r);
        return true;
    }
  });
}

/** Decode the parts of an ONNX ModelProto that describe the main graph; `source` names the model in errors. */
export function parseOnnxModel(bytes: Uint8Array, source: string): OnnxModel {
  const model: OnnxModel = {
    irVersion: 0,
    producer: '',
    opsets: [],
    graph: { nodes: [], inputs: [], outputs: [], valueInfo: [], initializers: [] },
    externalTensors: [],
  };
  let graphs = 0;
  try {
    eachField(bytes, (field, wire, r) => {
      if (field === MODEL.irVersion && wire === WIRE_VARINT) model.irVersion = toNumber(r.int64());
      else if (field === MODEL.producerName && wire === WIRE_LEN) model.producer = r.string();
      else if (field === MODEL.graph && wire === WIRE_LEN) {
        // a message field given twice is merged; repeated fields concatenate
        parseGraph(r.bytes(), model.graph);
        graphs++;
      } else if (field === MODEL.opsetImport && wire === WIRE_LEN) {
        const opset = { domain: '', version: 0 };
        eachField(r.bytes(), (f, w, or) => {
          if (f === OPSET.domain && w === WIRE_LEN) opset.domain = or.string();
          else if (f === OPSET.version && w === WIRE_VARINT) opset.version = toNumber(or.int64());
          else return false;
          return true;
        });
        model.opsets.push(opset);
      } else return false;
      return true;
    });
    collectExternal(bytes, 'model', model.externalTensors);
  } catch (err) {
    throw new OnnxFormatError(source, `not a readable ModelProto (${(err as Error).message})`);
  }
  if (graphs === 0 || model.irVersion === 0) {
    throw new OnnxFormatError(source, graphs === 0 ? 'it has no graph' : 'it has no ir_version');
  }
  return model;
}

function encodeValueInfo(name: string, elemType: number | null): Uint8Array {
  const w = protobuf.Writer.create()
    .uint32((VALUE_INFO.name << 3) | WIRE_LEN)
    .string(name);
  if (elemType !== null) {
    const tensorType = protobuf.Writer.create()
      .uint32((TENSOR_TYPE.elemType << 3) | WIRE_VARINT)
      .int32(elemType)
      .finish();
    const type = protobuf.Writer.create()
      .uint32((TYPE.tensorType << 3) | WIRE_LEN)
      .bytes(tensorType)
      .finish();
    w.uint32((VALUE_INFO.type << 3) | WIRE_LEN).bytes(type);
  }
  return w.finish();
}

/**
 * A copy of the model bytes with extra graph outputs. Each gets its element type when known and no
 * type otherwise (onnxruntime infers it; a wrong one, such as float for a shape tensor, would be an
 * error); the shape is left to inference. The graph is edited on the wire: the new outputs are
 * appended to the graph message, so every other byte of the model, weights and unknown fields
 * included, is kept as it was.
 */
export function withGraphOutputs(bytes: Uint8Array, outputs: { name: string; elemType: number | null }[]): Uint8Array {
  if (outputs.length === 0) return bytes;
  // repeated fields may be split across occurrences of the graph field; the last one gets the additions
  let last: { start: number; valueStart: number; end: number } | null = null;
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag >>> 3 === MODEL.graph && (tag & 7) === WIRE_LEN) {
      const length = r.uint32();
      last = { start, valueStart: r.pos, end: r.pos + length };
      r.skip(length);
    } else {
      r.skipType(tag & 7);
    }
  }
  if (last === null) throw new Error('the model has no graph to add outputs to');
  const extra = protobuf.Writer.create();
  for (const o of outputs) extra.uint32((GRAPH.output << 3) | WIRE_LEN).bytes(encodeValueInfo(o.name, o.elemType));
  const added = extra.finish();
  const header = protobuf.Writer.create()
    .uint32((MODEL.graph << 3) | WIRE_LEN)
    .uint32(last.end - last.valueStart + added.byteLength)
    .finish();
  const out = new Uint8Array(bytes.byteLength - (last.valueStart - last.start) + header.byteLength + added.byteLength);
  let at = 0;
  const put = (part: Uint8Array): void => {
    out.set(part, at);
    at += part.byteLength;
  };
  put(bytes.subarray(0, last.start));
  put(header);
  put(bytes.subarray(last.valueStart, last.end));
  put(added);
  put(bytes.subarray(last.end));
  return out;
}

// ---- reading weights and editing the graph (model.precision: int8) ----

const TENSOR_DATA = { floatData: 4, rawData: 9 } as const;
const ATTRIBUTE_VALUE = { name: 1, f: 2, i: 3 } as const;
const WIRE_FIXED32 = 5;

/** An inline weight's bytes as stored: raw_data, or float_data packed back into little-endian bytes. */
export interface OnnxTensorData {
  name: string;
  dims: number[];
  dataType: number;
  /** little-endian element bytes; null when the tensor's data lives in an external file */
  raw: Uint8Array | null;
}

function readTensorData(bytes: Uint8Array): OnnxTensorData {
  const t: OnnxTensorData = { name: '', dims: [], dataType: 0, raw: null };
  const floats: number[] = [];
  eachField(bytes, (field, wire, r) => {
    if (field === TENSOR.dims) readInt64s(wire, r, t.dims);
    else if (field === TENSOR.dataType && wire === WIRE_VARINT) t.dataType = r.int32();
    else if (field === TENSOR.name && wire === WIRE_LEN) t.name = r.string();
    else if (field === TENSOR_DATA.rawData && wire === WIRE_LEN) t.raw = r.bytes();
    else if (field === TENSOR_DATA.floatData && wire === WIRE_LEN) {
      const end = r.uint32() + r.pos;
      while (r.pos < end) floats.push(r.float());
    } else if (field === TENSOR_DATA.floatData && wire === WIRE_FIXED32) floats.push(r.float());
    else return false;
    return true;
  });
  if (t.raw === null && floats.length > 0) t.raw = new Uint8Array(Float32Array.from(floats).buffer);
  return t;
}

/** The main graph's initializers named in `names`, with their data when it is inside the .onnx file. */
export function readInitializers(bytes: Uint8Array, names: ReadonlySet<string>): Map<string, OnnxTensorData> {
  const found = new Map<string, OnnxTensorData>();
  eachField(bytes, (field, wire, r) => {
    if (field !== MODEL.graph || wire !== WIRE_LEN) return false;
    eachField(r.bytes(), (gf, gw, gr) => {
      if (gf !== GRAPH.initializer || gw !== WIRE_LEN) return false;
      const raw = gr.bytes();
      // the name comes first in no particular order: read the whole tensor only when it is wanted
      const t = parseInitializer(raw);
      if (names.has(t.name)) found.set(t.name, readTensorData(raw));
      return true;
    });
    return true;
  });
  return found;
}

/** Integer and float attributes of every node of the main graph whose op is in `ops`, by node index (graph order). */
export function numericAttributes(bytes: Uint8Array, ops: ReadonlySet<string>): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  let index = 0;
  eachField(bytes, (field, wire, r) => {
    if (field !== MODEL.graph || wire !== WIRE_LEN) return false;
    eachField(r.bytes(), (gf, gw, gr) => {
      if (gf !== GRAPH.node || gw !== WIRE_LEN) return false;
      const raw = gr.bytes();
      const i = index++;
      if (!ops.has(parseNode(raw).opType)) return true;
      const attrs: Record<string, number> = {};
      eachField(raw, (nf, nw, nr) => {
        if (nf !== NODE_MORE.attribute || nw !== WIRE_LEN) return false;
        let name = '';
        let value: number | null = null;
        eachField(nr.bytes(), (af, aw, ar) => {
          if (af === ATTRIBUTE_VALUE.name && aw === WIRE_LEN) name = ar.string();
          else if (af === ATTRIBUTE_VALUE.f && aw === WIRE_FIXED32) value = ar.float();
          else if (af === ATTRIBUTE_VALUE.i && aw === WIRE_VARINT) value = toNumber(ar.int64());
          else return false;
          return true;
        });
        if (value !== null) attrs[name] = value;
        return true;
      });
      out.set(i, attrs);
      return true;
    });
    return true;
  });
  return out;
}

/** A NodeProto without attributes. */
export function encodeNode(node: OnnxNode): Uint8Array {
  const w = protobuf.Writer.create();
  for (const i of node.inputs) w.uint32((NODE.input << 3) | WIRE_LEN).string(i);
  for (const o of node.outputs) w.uint32((NODE.output << 3) | WIRE_LEN).string(o);
  if (node.name !== '') w.uint32((NODE.name << 3) | WIRE_LEN).string(node.name);
  w.uint32((NODE.opType << 3) | WIRE_LEN).string(node.opType);
  if (node.domain !== '') w.uint32((NODE.domain << 3) | WIRE_LEN).string(node.domain);
  return w.finish();
}

/** A TensorProto with its data as raw_data. */
export function encodeTensor(t: { name: string; dims: number[]; dataType: number; raw: Uint8Array }): Uint8Array {
  const w = protobuf.Writer.create();
  for (const d of t.dims) w.uint32((TENSOR.dims << 3) | WIRE_VARINT).int64(d);
  w.uint32((TENSOR.dataType << 3) | WIRE_VARINT).int32(t.dataType);
  w.uint32((TENSOR.name << 3) | WIRE_LEN).string(t.name);
  w.uint32((TENSOR_DATA.rawData << 3) | WIRE_LEN).bytes(t.raw);
  return w.finish();
}

/** What {@link editGraph} changes in a model's main graph. */
export interface GraphEdit {
  /** node index (graph order, as {@link OnnxGraph.nodes}) -> the encoded nodes that take its place, in order */
  replace: Map<number, Uint8Array[]>;
  /** initializers of the main graph to leave out */
  dropInitializers: ReadonlySet<string>;
  /** encoded TensorProtos to add to the main graph */
  addInitializers: Uint8Array[];
  /** operator sets to import besides the model's own */
  addOpsets: { domain: string; version: number }[];
}

function field(tag: number, value: Uint8Array): Uint8Array[] {
  return [
    protobuf.Writer.create()
      .uint32((tag << 3) | WIRE_LEN)
      .uint32(value.byteLength)
      .finish(),
    value,
  ];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * A copy of the model bytes with nodes of the main graph replaced (each in its place, so the graph
 * stays in topological order), initializers dropped and added, and operator sets imported. Every
 * other byte of the model is kept as it was.
 */
export function editGraph(bytes: Uint8Array, edit: GraphEdit): Uint8Array {
  const parts: Uint8Array[] = [];
  let index = 0;
  let graphs = 0;
  let lastGraph = -1;
  const r = protobuf.Reader.create(bytes);
  // first pass: where the last graph field is, which gets the added initializers
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === MODEL.graph && (tag & 7) === WIRE_LEN) lastGraph = graphs++;
    r.skipType(tag & 7);
  }
  graphs = 0;
  r.pos = 0;
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    if (tag >>> 3 !== MODEL.graph || (tag & 7) !== WIRE_LEN) {
      r.skipType(tag & 7);
      parts.push(bytes.subarray(start, r.pos));
      continue;
    }
    const graph = r.bytes();
    const g: Uint8Array[] = [];
    const gr = protobuf.Reader.create(graph);
    while (gr.pos < gr.len) {
      const fieldStart = gr.pos;
      const gtag = gr.uint32();
      const gfield = gtag >>> 3;
      if ((gtag & 7) === WIRE_LEN && gfield === GRAPH.node) {
        gr.skipType(WIRE_LEN);
        const replacement = edit.replace.get(index++);
        if (replacement === undefined) g.push(graph.subarray(fieldStart, gr.pos));
        else for (const n of replacement) g.push(...field(GRAPH.node, n));
      } else if ((gtag & 7) === WIRE_LEN && gfield === GRAPH.initializer) {
        const value = gr.bytes();
        if (!edit.dropInitializers.has(parseInitializer(value).name)) g.push(graph.subarray(fieldStart, gr.pos));
      } else {
        gr.skipType(gtag & 7);
        g.push(graph.subarray(fieldStart, gr.pos));
      }
    }
    if (graphs++ === lastGraph) for (const t of edit.addInitializers) g.push(...field(GRAPH.initializer, t));
    parts.push(...field(MODEL.graph, concat(g)));
  }
  for (const o of edit.addOpsets) {
    const opset = protobuf.Writer.create()
      .uint32((OPSET.domain << 3) | WIRE_LEN)
      .string(o.domain)
      .uint32((OPSET.version << 3) | WIRE_VARINT)
      .int64(o.version)
      .finish();
    parts.push(...field(MODEL.opsetImport, opset));
  }
  return concat(parts);
}
