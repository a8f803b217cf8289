// Two browsers through a real relay (the release binary on loopback):
// browser A holds a generated workspace and shares it (the first upload of
// every record), browser B opens the invite link (the initial pull, until
// the whole list is there), then edits in A show up in B (propagation, with
// where the time goes: A's push frame, B's live frame, B showing it), then
// each browser reloads and reconnects with nothing new (the frames of that
// connection are counted: the budget is one round trip).
//   node tests/bench/sync.mjs --dist target/bench/dist --data target/bench --work target/bench/work \
//     --relay target/release/rapport-relay --out target/bench/results/sync.json --sizes 1000,10000
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../e2e/harness.mjs';
import { editContact, waitForText } from './inpage.mjs';
import { launch, log, newPage, serve } from './lib.mjs';
import { loadWorkspace } from './loader.mjs';

const o = { dist: 'target/bench/dist', data: 'target/bench', work: 'target/bench/work', relay: 'target/release/rapport-relay', out: 'target/bench/results/sync.json', sizes: '1000,10000', edits: '30' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];

async function startRelay() {
  const dataDir = mkdtempSync(join(tmpdir(), 'rapport-bench-relay-'));
  const port = await freePort();
  const proc = spawn(o.relay, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const until = Date.now() + 15000;
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break; } catch { /* starting */ }
    if (Date.now() > until) throw new Error('the relay did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `ws://127.0.0.1:${port}/sync`,
    stop: async () => { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); rmSync(dataDir, { recursive: true, force: true }); },
  };
}

async function waitUntil(what, fn, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Message types: the byte after the protocol version (crates/protocol/src/wire.rs).
const CLIENT = ['Hello', 'Push', 'Pull', 'ReplaceWithSnapshot', 'DeleteDocument', 'Ping'];
const SERVER = ['Challenge', 'Welcome', 'Pushed', 'Batch', 'SnapshotStored', 'DocumentDeleted', 'Live', 'Behind', 'Pong', 'Error'];
const frames = (page) => page.evaluate(() => window.__bench.ws);
const named = (f) => ({ ...f, name: (f.dir === 'sent' ? CLIENT : SERVER)[f.type] ?? f.dir });

/**
 * Reloads `page` (the app boots again and reconnects with nothing new to
 * send or receive), waits until it says "Synced" and then 2 s more, and
 * returns the frames of that connection: requests sent (each one a round
 * trip to the relay), messages received, and the times.
 */
async function reconnect(page) {
  const started = Date.now();
  await page.reload();
  await waitUntil('the reconnected browser to be synced', async () => (await page.getByTestId('sync-status').innerText().catch(() => '')) === 'Synced', 60000);
  const syncedAt = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  const log = (await frames(page)).map(named);
  const sockets = new Set(log.map((f) => f.socket));
  const connect = log.find((f) => f.dir === 'connect');
  const welcome = log.find((f) => f.dir === 'recv' && f.name === 'Welcome');
  return {
    sockets: sockets.size,
    sent: log.filter((f) => f.dir === 'sent').map((f) => f.name),
    received: log.filter((f) => f.dir === 'recv').map((f) => f.name),
    roundTrips: log.filter((f) => f.dir === 'sent').length,
    welcomeMs: welcome && connect ? welcome.t - connect.t : null,
    syncedMs: syncedAt - started,
  };
}

async function syncSize(size) {
  const name = `data-${size}.rbd`;
  const data = JSON.parse(readFileSync(join(o.data, `${name}.json`), 'utf8'));
  const profiles = [join(o.work, `sync-a-${size}`), join(o.work, `sync-b-${size}`)];
  for (const p of profiles) { rmSync(p, { recursive: true, force: true }); mkdirSync(p, { recursive: true }); }
  const relay = await startRelay();
  const server = await serve(o.dist, o.data);
  const timeout = 20 * 60 * 1000;
  const result = { size, records: data.records };
  let ctxA;
  let ctxB;
  try {
    ctxA = await launch(profiles[0]);
    const a = await newPage(ctxA);
    await a.goto(`${server.url}/__bench/blank.html`);
    await a.evaluate(loadWorkspace, { url: `/__bench/data/${name}`, batch: 2000 });
    await a.goto(`${server.url}/settings`);
    await a.getByLabel('Sync server address').fill(relay.url);
    const sharedAt = Date.now();
    await a.getByRole('button', { name: 'Share this workspace' }).click();
    const invite = await a.getByTestId('invite-link').inputValue({ timeout: 60000 });
    await waitUntil('browser A to finish its first upload', async () => (await a.getByTestId('sync-status').innerText()) === 'Synced', timeout);
    result.uploadMs = Date.now() - sharedAt;
    log(`sync ${size}: A uploaded ${data.records} records in ${(result.uploadMs / 1000).toFixed(1)} s`);

    ctxB = await launch(profiles[1]);
    const b = await newPage(ctxB);
    await b.goto(`${server.url}/contacts`);
    await b.getByText('No contacts yet').waitFor({ timeout: 60000 });
    const joinedAt = Date.now();
    await b.goto(invite);
    const want = `${size} total`;
    await waitUntil(`browser B to list ${size} contacts`, async () => (await b.getByTestId('contact-count').innerText().catch(() => '')) === want, timeout);
    result.pullMs = Date.now() - joinedAt;
    await waitUntil('browser B to be synced', async () => (await b.getByTestId('sync-status').innerText()) === 'Synced', timeout);
    result.pullSyncedMs = Date.now() - joinedAt;
    log(`sync ${size}: B listed all contacts after ${(result.pullMs / 1000).toFixed(1)} s (synced after ${(result.pullSyncedMs / 1000).toFixed(1)} s)`);

    // Propagation: B shows a contact; A edits it; time until B shows the edit.
    const id = data.edit_ids[1];
    await b.goto(`${server.url}/contacts/${id}`);
    await b.getByTestId('contact-page').waitFor({ timeout: 60000 });
    await a.goto(`${server.url}/contacts`);
    await a.getByTestId('contact-list').waitFor({ timeout: 60000 });
    result.propagation = [];
    result.propagationSteps = [];
    for (let k = 0; k < Number(o.edits); k += 1) {
      const title = `Propagated title ${k}`;
      const shown = b.evaluate(waitForText, title);
      await a.evaluate(editContact, { id, title });
      const submittedAt = await a.evaluate(() => window.__bench.lastSubmit);
      const seenAt = await Promise.race([shown, new Promise((_, fail) => setTimeout(() => fail(new Error(`edit ${k} did not reach browser B within 30 s`)), 30000))]);
      result.propagation.push(seenAt - submittedAt);
      // Where the time went: A's push leaving, A's acknowledgement, B's live frame arriving.
      const after = (log, dir, name) => log.map(named).find((f) => f.t >= submittedAt && f.dir === dir && f.name === name)?.t ?? null;
      const [logA, logB] = [await frames(a), await frames(b)];
      const pushSent = after(logA, 'sent', 'Push');
      const durableAt = await a.evaluate(() => performance.timeOrigin + window.__bench.saves.at(-1));
      result.propagationSteps.push({
        total: seenAt - submittedAt,
        submitToDurable: durableAt - submittedAt,
        durableToPush: pushSent && pushSent - durableAt,
        submitToPush: pushSent && pushSent - submittedAt,
        pushToAck: pushSent && (after(logA, 'recv', 'Pushed') ?? NaN) - pushSent,
        pushToLive: pushSent && (after(logB, 'recv', 'Live') ?? NaN) - pushSent,
        liveToShown: (after(logB, 'recv', 'Live') ?? NaN) && seenAt - after(logB, 'recv', 'Live'),
      });
      await new Promise((r) => setTimeout(r, 300));
    }
    log(`sync ${size}: propagation ${result.propagation.map((ms) => Math.round(ms)).join(', ')} ms`);
    log(`sync ${size}: steps ${JSON.stringify(result.propagationSteps.slice(-3))}`);

    // Reconnecting with nothing new: B (which received everything), then A.
    result.reconnect = { b: await reconnect(b), a: await reconnect(a) };
    log(`sync ${size}: reconnect B ${JSON.stringify(result.reconnect.b)}; A ${JSON.stringify(result.reconnect.a)}`);
    result.errors = [...a.errors, ...b.errors];
  } catch (e) {
    result.error = String(e.stack ?? e);
    log(`sync ${size}: FAILED ${result.error}`);
  } finally {
    await ctxA?.close();
    await ctxB?.close();
    await server.close();
    await relay.stop();
    for (const p of profiles) rmSync(p, { recursive: true, force: true });
  }
  return result;
}

const results = { date: new Date().toISOString(), runs: [] };
for (const size of o.sizes.split(',').map(Number)) results.runs.push(await syncSize(size));
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(o.out, JSON.stringify(results, null, 1));
log(`results in ${o.out}`);
