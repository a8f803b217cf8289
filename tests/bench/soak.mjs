// Soak: two browsers share one workspace through a real relay for a long
// stretch (30 minutes by default) of random work: contacts created and
// edited in either browser, one browser or the other cut off the network
// for a while, and the relay killed (SIGKILL) and restarted on its data.
// At the end both browsers are online, the relay is up, and each browser
// must hold every contact either browser created, with the last job title
// each was given, and say "Synced". The verdict and counts are written as
// JSON for docs/BENCHMARKS.md.
//   node tests/bench/soak.mjs --dist target/bench/dist --relay target/release/rapport-relay \
//     --out target/bench/results/soak.json --minutes 30 --seed 7
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, freePort, joinByInvite } from '../e2e/harness.mjs';
import { log, serve } from './lib.mjs';

const o = { dist: 'target/bench/dist', relay: 'target/release/rapport-relay', out: 'target/bench/results/soak.json', minutes: '30', seed: '7' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];

// A small seeded generator (mulberry32): the same seed makes the same run.
let state = Number(o.seed) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];

/** The relay binary on a fixed port and data dir, killed and restarted at will. */
async function relay() {
  const dataDir = mkdtempSync(join(tmpdir(), 'rapport-soak-relay-'));
  const port = await freePort();
  let proc;
  const up = async () => {
    proc = spawn(o.relay, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
    const until = Date.now() + 15000;
    for (;;) {
      try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return; } catch { /* starting */ }
      if (Date.now() > until) throw new Error('the relay did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const kill = async () => { proc.kill('SIGKILL'); await new Promise((r) => proc.once('exit', r)); };
  await up();
  return { url: `ws://127.0.0.1:${port}/sync`, kill, up, stop: async () => { await kill(); rmSync(dataDir, { recursive: true, force: true }); } };
}

async function waitUntil(what, fn, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if (await fn()) return; } catch { /* page busy: try again */ }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const status = (page) => page.getByTestId('sync-status').innerText();

async function createContact(page, given, family) {
  await page.goto(`${page.appUrl}/contacts/new`);
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor({ timeout: 15000 });
}

async function setTitle(page, name, title) {
  await page.goto(`${page.appUrl}/contacts`);
  await page.getByRole('searchbox').first().fill(name);
  await page.getByRole('link', { name: new RegExp(`^${name}`) }).first().click();
  await page.getByRole('heading', { name }).waitFor({ timeout: 15000 });
  await page.getByRole('link', { name: 'Edit' }).first().click();
  await page.getByLabel('Job title').fill(title);
  await page.getByRole('button', { name: /^Save/ }).first().click();
  await page.getByRole('heading', { name }).waitFor({ timeout: 15000 });
}

/** Every contact row this browser holds: name → job title, read from the app's row index in IndexedDB. */
async function rows(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((ok, fail) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
      if (![...db.objectStoreNames].includes('rows')) { db.close(); continue; }
      const values = await new Promise((ok) => { const r = db.transaction('rows').objectStore('rows').getAll(); r.onsuccess = () => ok(r.result); });
      for (const v of values) {
        // Rows are JSON text (crates/core record::Row): title is the name, subtitle holds the job title.
        let row;
        try { row = JSON.parse(v); } catch { continue; }
        if (row.deleted || !/^Soak [AB]\d+$/.test(row.title ?? '')) continue;
        out[row.title] = (row.subtitle ?? '').match(/T\d+-[AB]/)?.[0] ?? '';
      }
      db.close();
    }
    return out;
  });
}

const started = Date.now();
const deadline = started + Number(o.minutes) * 60_000;
const server = await serve(o.dist, tmpdir());
const relayProc = await relay();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
const counts = { created: 0, edited: 0, offline: 0, relayRestarts: 0, steps: 0 };
const expected = {}; // name -> last title given (by whichever browser saved last in real time)
const pages = {};
let verdict = { ok: false };
try {
  for (const side of ['A', 'B']) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e)));
    page.appUrl = server.url;
    page.context_ = context;
    pages[side] = page;
  }
  await pages.A.goto(`${server.url}/settings`);
  await pages.A.getByLabel('Sync server address').fill(relayProc.url);
  await pages.A.getByRole('button', { name: 'Share this workspace' }).click();
  const invite = await pages.A.getByTestId('invite-link').inputValue();
  await joinByInvite(pages.B, invite, 'Soak B');
  await waitUntil('both synced after joining', async () => (await status(pages.A)) === 'Synced' && (await status(pages.B)) === 'Synced', 60000);

  const offline = { A: 0, B: 0 }; // until when each side is cut off
  let serial = 0;
  while (Date.now() < deadline) {
    counts.steps += 1;
    const now = Date.now();
    for (const side of ['A', 'B']) {
      if (offline[side] && now > offline[side]) { await pages[side].context_.setOffline(false); offline[side] = 0; }
    }
    const roll = random();
    const side = pick(['A', 'B']);
    if (roll < 0.55 || Object.keys(expected).length === 0) {
      serial += 1;
      const name = `Soak ${side}${serial}`;
      await createContact(pages[side], 'Soak', `${side}${serial}`);
      expected[name] = '';
      counts.created += 1;
    } else if (roll < 0.85) {
      const name = pick(Object.keys(expected));
      const title = `T${counts.steps}-${side}`;
      // An edit in a browser that has not received the contact yet waits for a later step.
      try {
        await setTitle(pages[side], name, title);
        expected[name] = title;
        counts.edited += 1;
      } catch { /* not there yet on this side */ }
    } else if (roll < 0.95) {
      if (!offline[side]) {
        await pages[side].context_.setOffline(true);
        offline[side] = Date.now() + 5000 + Math.floor(random() * 25000);
        counts.offline += 1;
      }
    } else {
      await relayProc.kill();
      await new Promise((r) => setTimeout(r, 500 + Math.floor(random() * 3000)));
      await relayProc.up();
      counts.relayRestarts += 1;
    }
    if (counts.steps % 20 === 0) log(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${JSON.stringify(counts)}`);
  }
  for (const side of ['A', 'B']) await pages[side].context_.setOffline(false);
  // Concurrent titles of one contact converge to one winner, not always the
  // later one in real time: compare the two browsers with each other, and
  // each with what was created.
  await waitUntil('both browsers to hold every contact and agree', async () => {
    const [a, b] = [await rows(pages.A), await rows(pages.B)];
    const names = Object.keys(expected);
    return names.every((n) => n in a && n in b) && JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  }, 180000);
  await waitUntil('both to say Synced', async () => (await status(pages.A)) === 'Synced' && (await status(pages.B)) === 'Synced', 60000);
  const [a, b] = [await rows(pages.A), await rows(pages.B)];
  const titlesAsLastSet = Object.keys(expected).filter((n) => a[n] === expected[n]).length;
  verdict = {
    ok: true, contacts: Object.keys(a).length, expected: Object.keys(expected).length, identical: JSON.stringify(a) === JSON.stringify(b),
    titlesAsLastSet, errors: [...pages.A.errors, ...pages.B.errors],
  };
} catch (e) {
  verdict = { ok: false, error: String(e?.message ?? e) };
} finally {
  await browser.close();
  await relayProc.stop();
  await server.close();
}
const result = { minutes: Number(o.minutes), seed: Number(o.seed), seconds: Math.round((Date.now() - started) / 1000), counts, ...verdict };
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(o.out, JSON.stringify(result, null, 2));
log(`soak: ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
