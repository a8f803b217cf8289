// The browser benchmark of one workspace size: loads the generated data into
// IndexedDB of a fresh Chromium profile, then measures cold start, memory,
// search, scrolling, edits and storage in the release build.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { editContact, scrollList, startTimes, typeQueries, wasmMemory } from './inpage.mjs';
import { launch, log, newPage, serve, summary } from './lib.mjs';
import { loadWorkspace } from './loader.mjs';

const MB = 1024 * 1024;

/** Bytes under `dir` on disk (apparent sizes of the files). */
function diskBytes(dir) {
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  } catch {
    return null;
  }
}

async function heap(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const usage = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  return { jsHeapUsed: usage.usedSize, jsHeapTotal: usage.totalSize, wasmMemory: await page.evaluate(wasmMemory) };
}

/** One page load of /contacts until the list shows rows and the next frame is produced. */
async function coldLoad(context, url, timeout) {
  const page = await newPage(context);
  await page.goto(`${url}/contacts`, { waitUntil: 'commit', timeout });
  await page.waitForFunction(() => window.__bench?.painted?.list !== undefined, null, { timeout, polling: 20 });
  const times = await page.evaluate(startTimes);
  return { page, times };
}

/**
 * @param {{ size: number, dist: string, dataDir: string, workDir: string, coldRuns: number,
 *           searchQueries?: number, edits: number, repeatEdits: number, scrolls: number }} o
 */
export async function benchSize(o) {
  const name = `data-${o.size}.rbd`;
  const data = JSON.parse(readFileSync(join(o.dataDir, `${name}.json`), 'utf8'));
  const profile = join(o.workDir, `profile-${o.size}`);
  rmSync(profile, { recursive: true, force: true });
  mkdirSync(profile, { recursive: true });
  const server = await serve(o.dist, o.dataDir);
  const timeout = o.size >= 50000 ? 300000 : 120000;
  const errors = [];
  const result = { size: o.size, data, errors };
  try {
    // 1. Load the generated workspace into IndexedDB.
    let context = await launch(profile);
    let page = await newPage(context);
    await page.goto(`${server.url}/__bench/blank.html`);
    log(`${o.size}: loading ${data.records} records into IndexedDB`);
    result.load = await page.evaluate(loadWorkspace, { url: `/__bench/data/${name}`, batch: 2000 });
    log(`${o.size}: loaded in ${(result.load.ms / 1000).toFixed(1)} s`);
    await page.close();

    // 2. A first start fills the HTTP cache (wasm, JS, CSS); not counted.
    const warm = await coldLoad(context, server.url, timeout);
    result.firstVisit = warm.times;
    errors.push(...warm.page.errors);
    await warm.page.close();
    await context.close();

    // 3. Cold starts: a new browser process, then a new tab per start.
    context = await launch(profile);
    const starts = [];
    for (let i = 0; i < o.coldRuns; i += 1) {
      const run = await coldLoad(context, server.url, timeout);
      starts.push(run.times);
      errors.push(...run.page.errors);
      if (i < o.coldRuns - 1) await run.page.close();
      else page = run.page;
    }
    result.coldStart = starts;
    log(`${o.size}: cold start ${starts.map((s) => Math.round(s.painted)).join(', ')} ms`);

    // 4. Memory once loaded (after a garbage collection).
    result.memoryAfterLoad = await heap(context, page);

    // 5. Search, keystroke by keystroke, over the whole list.
    const queries = data.queries.slice(0, o.searchQueries ?? data.queries.length);
    result.search = await page.evaluate(typeQueries, queries);
    const typed = result.search.map((s) => s.ms);
    log(`${o.size}: search p50 ${summary(typed).p50.toFixed(1)} ms, p95 ${summary(typed).p95.toFixed(1)} ms`);

    // 6. Scrolling: jumps and small steps.
    result.scroll = await page.evaluate(scrollList, o.scrolls);

    // 7. Edits: submit to durable, on different contacts, then repeatedly on one.
    const edits = [];
    const ids = data.edit_ids.slice(0, o.edits);
    for (const [k, id] of ids.entries()) {
      edits.push({ id, kind: 'different', ms: await page.evaluate(editContact, { id, title: `Bench title ${k}` }) });
    }
    for (let k = 0; k < o.repeatEdits; k += 1) {
      edits.push({ id: ids[0], kind: 'same', ms: await page.evaluate(editContact, { id: ids[0], title: `Repeat ${k}` }) });
    }
    result.edits = edits;
    log(`${o.size}: edit p50 ${summary(edits.map((e) => e.ms)).p50.toFixed(1)} ms, p95 ${summary(edits.map((e) => e.ms)).p95.toFixed(1)} ms`);

    // 8. Memory after all that, storage as the browser reports it.
    result.memoryAfterUse = await heap(context, page);
    result.estimate = await page.evaluate(() => navigator.storage.estimate());
    result.alive = await page.evaluate(() => document.querySelectorAll('[data-testid=contact-count]').length >= 0);
    errors.push(...page.errors);
    await context.close();
    result.indexedDbOnDisk = diskBytes(join(profile, 'Default', 'IndexedDB'));
    // The profile holds a copy of the data (300 MB at 100k); it is rebuilt every run.
    rmSync(profile, { recursive: true, force: true });
  } catch (e) {
    errors.push(`benchmark failed: ${e.stack ?? e}`);
    log(`${o.size}: FAILED ${e.stack ?? e}`);
  } finally {
    await server.close();
  }
  log(`${o.size}: IndexedDB on disk ${(result.indexedDbOnDisk / MB).toFixed(1)} MB; errors: ${errors.length}`);
  return result;
}
