// layertap's door to LanceDB. @lancedb/lancedb takes apache-arrow <= 18.1 as a peer, layertap
// builds its batches with apache-arrow 21: this package carries its own apache-arrow 18, and
// everything crossing its border is Arrow IPC stream bytes or plain values, never an Arrow
// object of one version handed to code of the other.
import { createRequire } from 'node:module';

// @lancedb/lancedb is CommonJS and checks Arrow tables with `instanceof` against the CommonJS
// build of apache-arrow: load both through require, or an ESM-built Table is not its Table
const require = createRequire(import.meta.url);
const { connect, Index } = require('@lancedb/lancedb');
const { tableFromIPC } = require('apache-arrow');

/** Seconds a merge may take before LanceDB cancels it (its own default is 30). */
const MERGE_TIMEOUT_MS = 60 * 60 * 1000;

function fieldsOf(schema) {
  return schema.fields.map((f) => ({ name: f.name, type: String(f.type) }));
}

function sqlString(s) {
  return `'${String(s).replaceAll("'", "''")}'`;
}

export class LanceTables {
  #db;
  #tables = new Map();

  constructor(db) {
    this.#db = db;
  }

  static async connect(uri, storageOptions = {}) {
    // readConsistencyInterval 0: every read sees the latest version, whoever wrote it (another
    // worker, another process), not the one this handle first opened
    return new LanceTables(await connect(uri, { storageOptions, readConsistencyInterval: 0 }));
  }

  async tableNames() {
    return this.#db.tableNames();
  }

  async #table(name) {
    let t = this.#tables.get(name);
    if (!t) {
      t = await this.#db.openTable(name);
      this.#tables.set(name, t);
    }
    return t;
  }

  async describe(name) {
    let t;
    try {
      t = await this.#table(name);
    } catch (err) {
      // asked by opening, not by listing: a database on S3 may list no tables it holds
      if (/^Table '.*' was not found/.test(err.message)) return null;
      throw err;
    }
    await t.checkoutLatest();
    return { fields: fieldsOf(await t.schema()), rows: await t.countRows(), version: await t.version() };
  }

  async write(name, ipc, mode) {
    const data = tableFromIPC(ipc);
    if (mode === 'create' || mode === 'overwrite') {
      this.#tables.get(name)?.close();
      this.#tables.delete(name);
      const t = await this.#db.createTable(name, data, { mode: mode === 'create' ? 'create' : 'overwrite' });
      this.#tables.set(name, t);
      return { version: await t.version(), inserted: data.numRows, updated: 0, deleted: 0 };
    }
    const t = await this.#table(name);
    let b = t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll();
    if (mode === 'mirror') b = b.whenNotMatchedBySourceDelete();
    else if (mode !== 'merge') throw new Error(`write: unknown mode '${mode}'`);
    const r = await b.execute(data, { timeoutMs: MERGE_TIMEOUT_MS });
    return { version: r.version, inserted: r.numInsertedRows, updated: r.numUpdatedRows, deleted: r.numDeletedRows };
  }

  async ids(name) {
    const t = await this.#table(name);
    const out = [];
    for await (const batch of t.query().select(['id'])) {
      const col = batch.getChild('id');
      for (let i = 0; i < batch.numRows; i++) out.push(col.get(i));
    }
    return out;
  }

  async deleteIds(name, ids) {
    const t = await this.#table(name);
    for (let i = 0; i < ids.length; i += 1000) {
      await t.delete(`id IN (${ids.slice(i, i + 1000).map(sqlString).join(', ')})`);
    }
    return { version: await t.version() };
  }

  async countRows(name, filter) {
    return (await this.#table(name)).countRows(filter);
  }

  async createIndex(name, column, opts) {
    const t = await this.#table(name);
    const config =
      opts.type === 'hnsw_sq' ? Index.hnswSq({ distanceType: opts.metric }) : Index.ivfPq({ distanceType: opts.metric, ...(opts.numPartitions ? { numPartitions: opts.numPartitions } : {}) });
    await t.createIndex(column, { config, replace: true });
    return { version: await t.version() };
  }

  async listIndices(name) {
    return (await (await this.#table(name)).listIndices()).map((i) => ({ name: i.name, type: i.indexType, columns: i.columns }));
  }

  async search(name, column, vector, k, metric) {
    const t = await this.#table(name);
    const rows = await t.vectorSearch(Float32Array.from(vector)).column(column).distanceType(metric).select(['id', '_distance']).limit(k).toArray();
    return rows.map((r) => ({ id: r.id, distance: r._distance }));
  }

  close() {
    for (const t of this.#tables.values()) t.close();
    this.#tables.clear();
    this.#db.close();
  }
}
