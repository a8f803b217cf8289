// The data loader: runs inside a blank page of the app's origin (never in
// the app) and writes a generated workspace (crates/bench, `format.rs`)
// straight into the app's IndexedDB, in the layout of crates/idb/src/schema.rs
// (database "rapport", version 4): every record's Automerge bytes as its
// snapshot, its row JSON in `rows`, and the app's `member_id`/`workspace_id`
// keys in `meta`, so that the app boots into the generated workspace as
// that member. The file is streamed and written in batches of `batch`
// records per transaction; nothing goes through the production app.

/** @param {{ url: string, batch: number }} options */
export async function loadWorkspace({ url, batch }) {
  const STORES = ['snapshots', 'chunks', 'rows', 'quarantine', 'meta', 'outbox'];
  const started = performance.now();
  const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const done = (tx) => new Promise((ok, fail) => {
    tx.oncomplete = ok;
    tx.onerror = () => fail(tx.error);
    tx.onabort = () => fail(tx.error ?? new Error('transaction aborted'));
  });

  // Chunks and outbox entries get their keys from the key generator and are
  // found by record through an index (versions 3 and 4).
  const GENERATED = ['chunks', 'outbox'];
  await req(indexedDB.deleteDatabase('rapport'));
  const open = indexedDB.open('rapport', 4);
  open.onupgradeneeded = () => {
    const db = open.result;
    for (const name of STORES) {
      if (db.objectStoreNames.contains(name)) continue;
      const generated = GENERATED.includes(name);
      const store = db.createObjectStore(name, { autoIncrement: generated });
      if (generated) store.createIndex('by_record', 'id');
    }
  };
  const db = await req(open);

  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const reader = response.body.getReader();
  const text = new TextDecoder();
  let pending = new Uint8Array(0);
  let ended = false;
  /** Makes sure `n` bytes are pending; false at the end of the stream. */
  const need = async (n) => {
    while (pending.length < n && !ended) {
      const { value, done: finished } = await reader.read();
      if (finished) { ended = true; break; }
      const joined = new Uint8Array(pending.length + value.length);
      joined.set(pending);
      joined.set(value, pending.length);
      pending = joined;
    }
    return pending.length >= n;
  };
  const u32 = (at) => new DataView(pending.buffer, pending.byteOffset + at, 4).getUint32(0, true);

  if (!await need(16)) throw new Error('data file too short');
  const magic = text.decode(pending.subarray(0, 8));
  if (magic !== 'RAPBENCH' || u32(8) !== 1) throw new Error(`not a version 1 bench file: ${magic}`);
  const metaLen = u32(12);
  await need(16 + metaLen);
  const meta = JSON.parse(text.decode(pending.subarray(16, 16 + metaLen)));
  pending = pending.subarray(16 + metaLen);

  let records = 0;
  let bytes = 0;
  let transactions = 0;
  const byKind = {};
  let current = [];
  const flush = async () => {
    if (current.length === 0) return;
    const tx = db.transaction(['snapshots', 'rows'], 'readwrite', { durability: 'relaxed' });
    const snapshots = tx.objectStore('snapshots');
    const rows = tx.objectStore('rows');
    for (const r of current) {
      snapshots.put(r.doc, r.id);
      rows.put(r.row, r.id);
    }
    current = [];
    transactions += 1;
    await done(tx);
  };
  for (;;) {
    if (!await need(41)) break;
    const kind = pending[0];
    const id = text.decode(pending.subarray(1, 37));
    const rowLen = u32(37);
    await need(41 + rowLen + 4);
    const row = text.decode(pending.subarray(41, 41 + rowLen));
    const docLen = u32(41 + rowLen);
    const end = 45 + rowLen + docLen;
    await need(end);
    // slice(), not subarray(): a view would store its whole underlying buffer.
    const doc = pending.slice(45 + rowLen, end);
    pending = pending.subarray(end);
    current.push({ id, row, doc });
    records += 1;
    bytes += end;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    if (current.length >= batch) await flush();
  }
  await flush();
  if (records !== meta.records) throw new Error(`expected ${meta.records} records, read ${records}`);

  // The device's identity, as the app stores it (UTF-8 id text), written
  // last and strictly durable, after every record is in.
  const utf8 = new TextEncoder();
  const tx = db.transaction(['meta'], 'readwrite', { durability: 'strict' });
  tx.objectStore('meta').put(utf8.encode(meta.member_id), 'member_id');
  tx.objectStore('meta').put(utf8.encode(meta.workspace_id), 'workspace_id');
  await done(tx);
  db.close();
  return { records, bytes, transactions, byKind, ms: performance.now() - started };
}
