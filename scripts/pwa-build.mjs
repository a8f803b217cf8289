// Trunk post_build hook: turns trunk's output into an installable, offline,
// relocatable app. Runs on the staging directory before trunk moves it to
// dist/ (Trunk.toml, [[hooks]]). Steps:
//
// 1. Moves trunk's inline start-up <script type="module"> into a file,
//    boot-<hash>.js, so the Content-Security-Policy can be script-src 'self'
//    with no hash or nonce that changes with every build.
// 2. Makes the asset links in index.html relative. The public URL then
//    appears only in <base href>, so one build can be moved to another path
//    by changing that one attribute (scripts/relocate.mjs).
// 3. Release builds: adds the Content-Security-Policy <meta> (CSP below).
//    Dev builds skip it: `trunk serve` injects an inline live-reload script.
// 4. Writes 404.html (a copy of index.html) for hosts such as GitHub Pages
//    that answer unknown paths with it.
// 5. Writes sw.js at the app's root from public/sw.js, preceded by the build
//    manifest: every output file and a version that hashes them all. Under
//    `trunk serve`, whose live reload a caching worker would defeat, sw.js
//    is a worker that removes itself instead.
//
// Also runs by hand on a built directory (step 1 is then already done):
//   node scripts/pwa-build.mjs <dir>
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What the app needs, and nothing else. Explained in docs/DEPLOY.md. */
export const CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self'",
  "manifest-src 'self'",
  "worker-src 'self'",
  // Relay addresses are typed in at run time, so any ws:/wss: host.
  "connect-src 'self' ws: wss:",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A worker that uninstalls Rapport's offline cache (docs/DEPLOY.md, "Removing the offline app"). */
const REMOVE_WORKER = `// Removes Rapport's service worker and its caches from this scope.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil((async () => {
  const prefix = \`rapport:\${new URL(self.registration.scope).pathname}:\`;
  for (const name of await caches.keys()) if (name.startsWith(prefix)) await caches.delete(name);
  await self.registration.unregister();
})()));
`;

function fail(message) {
  console.error(`[pwa-build] ${message}`);
  process.exit(1);
}

function sha(bytes, encoding = 'hex', algorithm = 'sha256') {
  return createHash(algorithm).update(bytes).digest(encoding);
}

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

/** Step 1: the inline module script becomes boot-<hash>.js; returns the new HTML and the file name. */
function extractBoot(html, dir) {
  const inline = [...html.matchAll(/<script type="?module"?(?: nonce="[^"]*")?>([\s\S]*?)<\/script>/g)];
  if (inline.length === 0) {
    const existing = html.match(/<script type="module" src="(boot-[0-9a-f]+\.js)"/);
    if (!existing) fail('index.html has neither trunk\'s inline start-up script nor a boot-*.js script');
    return { html, boot: existing[1] };
  }
  if (inline.length > 1) fail(`expected one inline module script in index.html, found ${inline.length}`);
  const [tag, body] = inline[0];
  // trunk 0.21 writes: import init, * as bindings from '<base><js>';
  //                    const wasm = await init({ module_or_path: '<base><wasm>' });
  const js = body.match(/from '[^']*?([^'/]+\.js)'/);
  const wasm = body.match(/module_or_path: '[^']*?([^'/]+\.wasm)'/);
  if (!js || !wasm) fail(`trunk's start-up script has an unexpected shape; update scripts/pwa-build.mjs:\n${body}`);
  const start = body.match(/const wasm = await init\(\{ module_or_path: '[^']*' \}\);/);
  if (!start) fail(`trunk's start-up script has an unexpected shape; update scripts/pwa-build.mjs:\n${body}`);
  // A load cut short (a reload while the browser was still writing the wasm
  // to its HTTP cache) can fail once with ERR_CACHE_WRITE_FAILURE: fetch it
  // again past the cache before giving up, and then say so on the page.
  const robustStart = `const wasmUrl = new URL('./${wasm[1]}', import.meta.url);
let wasm;
try {
  wasm = await init({ module_or_path: wasmUrl });
} catch (first) {
  try {
    wasm = await init({ module_or_path: fetch(wasmUrl, { cache: 'reload' }) });
  } catch (error) {
    const boot = document.getElementById('boot');
    if (boot) boot.textContent = 'Rapport could not start: its program file did not load (' + error + '). Reload the page to try again.';
    throw error;
  }
}`;
  const code = body
    .replace(js[0], `from './${js[1]}'`)
    .replace(start[0], robustStart)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  const source = `// Starts Rapport (generated by scripts/pwa-build.mjs from trunk's loader).\n${code}\n`;
  const boot = `boot-${sha(source).slice(0, 16)}.js`;
  writeFileSync(join(dir, boot), source);
  const integrity = `sha384-${sha(source, 'base64', 'sha384')}`;
  return { html: html.replace(tag, `<script type="module" src="${boot}" integrity="${integrity}"></script>`), boot };
}

/** Step 2: href="/crm/main-….css" → href="main-….css"; <base href> keeps the public URL. */
function relativeLinks(html, publicUrl) {
  if (publicUrl === '/' || publicUrl.startsWith('/')) {
    const prefix = publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return html.replace(new RegExp(`(<(?:link|script)\\b[^>]*?\\s(?:href|src)=")${prefix}(?=[^"])`, 'g'), '$1');
  }
  fail(`the public URL must be a path such as / or /crm/ (got "${publicUrl}"); see docs/DEPLOY.md`);
}

/** Step 3. */
function withCsp(html) {
  const meta = `<meta http-equiv="Content-Security-Policy" content="${CSP}" />`;
  const existing = /<meta http-equiv="Content-Security-Policy"[^>]*>/;
  if (existing.test(html)) return html.replace(existing, meta);
  // Right after <meta charset>: a policy covers only what comes after it.
  return html.replace(/(<meta charset="[^"]*"\s*\/?>)/, `$1\n    ${meta}`);
}

function main() {
  const dir = process.env.TRUNK_STAGING_DIR ?? process.argv[2];
  if (!dir) fail('usage: node scripts/pwa-build.mjs <dir> (or run as a trunk post_build hook)');
  const indexPath = join(dir, 'index.html');
  let html = readFileSync(indexPath, 'utf8');
  const publicUrl = process.env.TRUNK_PUBLIC_URL ?? html.match(/<base href="([^"]*)"/)?.[1] ?? '/';

  const extracted = extractBoot(html, dir);
  html = relativeLinks(extracted.html, publicUrl);
  if (process.env.TRUNK_PROFILE === 'release') html = withCsp(html);
  writeFileSync(indexPath, html);
  writeFileSync(join(dir, '404.html'), html);

  // Step 5. copy-dir also copied the worker's source to public/sw.js.
  if (existsSync(join(dir, 'public', 'sw.js'))) rmSync(join(dir, 'public', 'sw.js'));
  if (html.includes('.well-known/trunk/ws')) {
    // `trunk serve` reloads the page after each rebuild; a worker answering
    // from its cache would keep showing the previous build. This one removes
    // any earlier worker and cache on this origin, then itself.
    writeFileSync(join(dir, 'sw.js'), REMOVE_WORKER);
    console.log('[pwa-build] trunk serve: sw.js removes itself (the app runs, but not offline)');
    return;
  }
  const template = readFileSync(join(process.env.TRUNK_SOURCE_DIR ?? repo, 'public', 'sw.js'), 'utf8');
  const skip = new Set(['sw.js', '404.html']);
  const files = listFiles(dir)
    .map((path) => relative(dir, path).split(sep).join('/'))
    .filter((file) => !skip.has(file))
    .sort();
  const version = sha(files.map((f) => `${f}\0${sha(readFileSync(join(dir, f)))}\n`).join('')).slice(0, 16);
  const build = { version, boot: extracted.boot, files };
  writeFileSync(join(dir, 'sw.js'), `self.__RAPPORT_BUILD__ = ${JSON.stringify(build)};\n${template}`);
  console.log(`[pwa-build] sw.js: version ${version}, ${files.length} files, boot ${extracted.boot}${html.includes('Content-Security-Policy') ? ', CSP meta' : ''}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
