// Runs the browser benchmarks and measures the bundle; writes one JSON file
// of results (scripts/bench.sh, then tests/bench/report.mjs).
//   node tests/bench/run.mjs --dist target/bench/dist --data target/bench \
//     --work target/bench/work --out target/bench/results/browser.json --sizes 1000,10000,100000
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { benchSize } from './browser.mjs';
import { log } from './lib.mjs';

function options() {
  const o = {
    dist: 'target/bench/dist', data: 'target/bench', work: 'target/bench/work',
    out: 'target/bench/results/browser.json', sizes: '1000,10000,100000', coldRuns: '5',
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    o[key] = argv[i + 1];
  }
  return o;
}

/** Raw, gzip (level 9) and brotli (quality 11) sizes of the files the app loads. */
export function bundle(dist) {
  const files = readdirSync(dist).filter((f) => /\.(wasm|js|css)$/.test(f) && statSync(join(dist, f)).isFile());
  return files.sort().map((name) => {
    const bytes = readFileSync(join(dist, name));
    return {
      name,
      type: name.split('.').pop(),
      raw: bytes.length,
      gzip: gzipSync(bytes, { level: 9 }).length,
      brotli: brotliCompressSync(bytes, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
      }).length,
    };
  });
}

function machine() {
  const chromium = (() => {
    try { return execFileSync(process.env.CHROMIUM ?? '/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
  })();
  const os = (() => {
    try { return readFileSync('/etc/os-release', 'utf8').match(/PRETTY_NAME="([^"]+)"/)?.[1]; } catch { return 'unknown'; }
  })();
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGB: Math.round(totalmem() / 1e9),
    os,
    chromium,
    node: process.version,
  };
}

const o = options();
const results = {
  date: new Date().toISOString(),
  machine: machine(),
  loadBefore: loadavg(),
  bundle: bundle(o.dist),
  sizes: [],
};
for (const size of o.sizes.split(',').map(Number)) {
  const started = Date.now();
  const load = loadavg();
  const r = await benchSize({
    size, dist: o.dist, dataDir: o.data, workDir: o.work, coldRuns: Number(o.coldRuns),
    edits: 30, repeatEdits: 40, scrolls: 30,
  });
  r.loadAverage = { before: load, after: loadavg() };
  r.wallSeconds = (Date.now() - started) / 1000;
  results.sizes.push(r);
}
results.loadAfter = loadavg();
mkdirSync(dirname(o.out), { recursive: true });
writeFileSync(o.out, JSON.stringify(results, null, 1));
log(`results in ${o.out}`);
if (results.sizes.some((s) => s.errors.length)) {
  for (const s of results.sizes) for (const e of s.errors) log(`${s.size}: ${e}`);
  process.exitCode = 1;
}
