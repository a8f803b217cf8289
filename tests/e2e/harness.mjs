// Shared set-up for the end-to-end journeys: serves dist/ with the plain
// static server, launches Debian's Chromium through playwright-core, and
// offers small polling assertions (playwright-core has no `expect`).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshotDir = join(root, 'artifacts', 'screenshots');
mkdirSync(screenshotDir, { recursive: true });

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitForHttp(url, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${url} did not start`);
}

/** Serves dist/ on a free port; returns { url, stop }. */
export async function serveApp() {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(root, 'scripts', 'serve.mjs'), join(root, 'dist'), String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`);
  return { url, stop: () => proc.kill() };
}

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A page that fails the test on uncaught errors (a panic in wasm shows up here). */
export async function newPage(browserOrContext, viewport = { width: 1280, height: 800 }) {
  const context = browserOrContext.newContext ? await browserOrContext.newContext({ viewport }) : browserOrContext;
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  // ERR_CACHE_WRITE_FAILURE is Chromium's HTTP cache losing a race between
  // two loads of one file; the loader fetches the wasm again past the cache.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('ERR_CACHE_WRITE_FAILURE')) page.errors.push(new Error(m.text()));
  });
  return page;
}

/** Polls `fn` until it returns without throwing (or the timeout). */
export async function eventually(fn, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

export async function shot(page, name) {
  // Two animation frames: the screenshot shows what was just rendered, not
  // the frame before it (seen as blank shots right after a navigation).
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: false });
}

/** Starts the relay binary on a free port with a fresh data dir; returns { url, dataDir, stop, restart }. */
export async function startRelay() {
  const { existsSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const bin = process.env.RELAY_BIN
    ?? [join(root, 'target', 'release', 'rapport-relay'), join(root, 'target', 'debug', 'rapport-relay')].find(existsSync);
  if (!bin) throw new Error('build the relay first: cargo build --release -p rapport-relay');
  const dataDir = mkdtempSync(join(tmpdir(), 'rapport-relay-'));
  const port = await freePort();
  let proc;
  const launchRelay = async () => {
    proc = spawn(bin, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`);
  };
  await launchRelay();
  return {
    url: `ws://127.0.0.1:${port}/sync`,
    dataDir,
    stop: async () => {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
    },
    restart: launchRelay,
  };
}

/** Every key and value of every object store of every database of this origin, as one string. */
export async function dumpIndexedDb(page) {
  return page.evaluate(async () => {
    const text = [];
    const decoder = new TextDecoder('utf-8', { fatal: false });
    const show = (v) => {
      if (v instanceof Uint8Array || v instanceof ArrayBuffer) return decoder.decode(v);
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object') return Object.values(v).map(show).join(' ');
      return String(v);
    };
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      for (const store of db.objectStoreNames) {
        const tx = db.transaction(store);
        const os = tx.objectStore(store);
        const [keys, values] = await Promise.all([os.getAllKeys(), os.getAll()].map((req) => new Promise((res) => { req.onsuccess = () => res(req.result); })));
        keys.forEach((k, i) => text.push(show(k), show(values[i])));
      }
      db.close();
    }
    return text.join('\n');
  });
}


/**
 * Opens an invite link and agrees to join under `name` on the confirmation
 * that names the workspace and its sync server; returns what it showed.
 */
export async function joinByInvite(page, invite, name) {
  await page.goto(invite);
  const confirm = page.getByTestId('join-confirm');
  await confirm.waitFor();
  const shown = {
    workspace: await confirm.getByTestId('join-workspace').innerText(),
    relay: await confirm.getByTestId('join-relay').innerText(),
    text: await confirm.innerText(),
  };
  await confirm.getByLabel('Your name').fill(name);
  await confirm.getByRole('button', { name: 'Join workspace' }).click();
  await page.getByTestId('join-confirm').waitFor({ state: 'detached' });
  return shown;
}

/**
 * Registers the usual set-up of a test file: dist/ served on a free port,
 * one Chromium for the file's tests and, with `{ relay: true }`, a relay
 * binary on a fresh data dir. Read `env.server`, `env.browser` (and
 * `env.relay`) inside tests.
 */
export function useAppAndBrowser({ relay = false } = {}) {
  const env = { server: null, browser: null, relay: null };
  before(async () => {
    env.server = await serveApp();
    if (relay) env.relay = await startRelay();
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.relay?.stop();
    env.server?.stop();
  });
  return env;
}
