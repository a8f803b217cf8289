// Shared pieces of the browser benchmarks: a static server for the release
// build plus the generated data files, Chromium through playwright-core
// (Debian's /usr/bin/chromium, as in tests/e2e/harness.mjs), and statistics.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../e2e/harness.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
};

const BLANK = '<!doctype html><html><head><meta charset="utf-8"><title>bench loader</title></head><body></body></html>';

/**
 * Serves `dist` like a static host (unknown paths without an extension get
 * index.html; hashed assets are cacheable, index.html revalidates) and, under
 * /__bench/, a blank page of the same origin and the data files of `dataDir`.
 * Listens on `port` (the origin, port included, keys the IndexedDB data, so a
 * profile is reopened on the same port). Returns { url, close }.
 */
export async function serve(dist, dataDir, port = 0) {
  const root = resolve(dist);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/__bench/blank.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(BLANK);
      return;
    }
    if (url.pathname.startsWith('/__bench/data/')) {
      const name = url.pathname.slice('/__bench/data/'.length);
      if (!/^[\w.-]+$/.test(name)) { res.writeHead(400).end(); return; }
      const path = join(dataDir, name);
      try {
        const s = await stat(path);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size });
        createReadStream(path).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
      return;
    }
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, '');
    let path = join(root, rel);
    if (!path.startsWith(root)) { res.writeHead(403).end(); return; }
    const isFile = async (p) => { try { return (await stat(p)).isFile() ? p : null; } catch { return null; } };
    let found = await isFile(path) ?? await isFile(join(path, 'index.html'));
    if (!found && !extname(rel)) found = join(root, 'index.html');
    if (!found) { res.writeHead(404).end('not found'); return; }
    const body = await readFile(found);
    res.writeHead(200, {
      'content-type': TYPES[extname(found)] ?? 'application/octet-stream',
      'cache-control': /(index\.html|sw\.js)$/.test(found) ? 'no-cache' : 'public, max-age=3600',
    }).end(body);
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  const actual = server.address().port;
  return { url: `http://127.0.0.1:${actual}`, port: actual, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * Runs in every page before the app: keeps the wasm exports (for the linear
 * memory size) and notes when the frame after a mark has been produced.
 * performance.mark is wrapped so that the page learns of the app's marks
 * synchronously (wasm-bindgen looks `performance.mark` up at each call).
 */
export function initScript() {
  window.__bench = { painted: {}, saves: [], waiters: [] };
  window.__bench.helpers = () => {
    const channel = new MessageChannel();
    const queue = [];
    channel.port1.onmessage = () => queue.shift()?.();
    return {
      /** Resolves in a new task: after every microtask queued before it. */
      afterTasks: () => new Promise((ok) => { queue.push(ok); channel.port2.postMessage(0); }),
      nextFrame: () => new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0))),
      layout: () => document.body.getBoundingClientRect().height,
      count: () => document.querySelector('[data-testid=contact-count]')?.textContent ?? '',
    };
  };
  // Every relay WebSocket frame, with Date.now() (wall clock: comparable
  // between two browsers on one machine) and its message type (the byte
  // after the protocol version: the postcard variant of ClientMessage or
  // ServerMessage, crates/protocol/src/wire.rs). Used by sync.mjs.
  window.__bench.ws = [];
  const NativeWebSocket = window.WebSocket;
  let sockets = 0;
  const typeOf = (data) => (data instanceof ArrayBuffer ? new Uint8Array(data)[1] : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)[1] : -1);
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      const socket = (sockets += 1);
      this.__socket = socket;
      window.__bench.ws.push({ socket, dir: 'connect', t: Date.now() });
      this.addEventListener('open', () => window.__bench.ws.push({ socket, dir: 'open', t: Date.now() }));
      this.addEventListener('message', (e) => window.__bench.ws.push({ socket, dir: 'recv', type: typeOf(e.data), bytes: e.data.byteLength ?? 0, t: Date.now() }));
    }

    send(data) {
      window.__bench.ws.push({ socket: this.__socket, dir: 'sent', type: typeOf(data), bytes: data.byteLength ?? 0, t: Date.now() });
      return super.send(data);
    }
  };
  addEventListener('TrunkApplicationStarted', (e) => {
    performance.mark('bench:wasm-started');
    window.__bench.wasm = e.detail.wasm;
  });
  const mark = performance.mark.bind(performance);
  performance.mark = (name, options) => {
    const entry = mark(name, options);
    const b = window.__bench;
    if (name === 'rapport:list-rendered' && !('list' in b.painted)) {
      // The next frame's callbacks run after the DOM is built; the task
      // after them runs once that frame is produced.
      requestAnimationFrame(() => setTimeout(() => { b.painted.list = performance.now(); }, 0));
    }
    if (name === 'rapport:save-durable') {
      b.saves.push(entry.startTime);
      for (const w of b.waiters.splice(0)) w(entry.startTime);
    }
    return entry;
  };
}

export async function launch(userDataDir, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    viewport,
    // Assets come from the HTTP cache, not the service worker's cache: the
    // worker would also answer /__bench/ paths with the app shell.
    serviceWorkers: 'block',
    // The release build's CSP allows only 'self' scripts; evaluate and init
    // scripts are the benchmark's own.
    bypassCSP: true,
  });
  await context.addInitScript(initScript);
  return context;
}

/** A page that records uncaught errors and console errors (a wasm panic shows up here). */
export async function newPage(context) {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('crash', () => page.errors.push('the page crashed'));
  return page;
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function summary(values) {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    max: values.length ? Math.max(...values) : NaN,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN,
  };
}

export const log = (...args) => console.error('[bench]', ...args);
