// A plain static file server for dist/ with the one rule a single-page app
// needs: unknown paths without a file extension get index.html.
// Usage: node scripts/serve.mjs <dir> [port] [host] [mount]
// With a mount such as /crm/, <dir> is served at /crm/ (as a host would serve
// a build made with --public-url /crm/) and everything else is not found.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'dist');
const port = Number(process.argv[3] ?? 8080);
const host = process.argv[4] ?? '127.0.0.1';
const mount = (process.argv[5] ?? '/').replace(/\/?$/, '/');
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.ico': 'image/x-icon',
};

async function file(path) {
  try {
    const s = await stat(path);
    return s.isFile() ? path : null;
  } catch {
    return null;
  }
}

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (`${url.pathname}/` === mount) { res.writeHead(301, { location: mount }).end(); return; }
  if (!url.pathname.startsWith(mount)) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
  const rel = normalize(decodeURIComponent(url.pathname.slice(mount.length))).replace(/^([/\\])+/, '');
  let path = join(root, rel);
  if (!path.startsWith(root)) { res.writeHead(403).end('forbidden'); return; }
  let found = await file(path) ?? await file(join(path, 'index.html'));
  if (!found && !extname(rel)) found = join(root, 'index.html');
  if (!found) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
  try {
    const body = await readFile(found);
    res.writeHead(200, {
      'content-type': types[extname(found)] ?? 'application/octet-stream',
      // index.html and sw.js name the build's files: always revalidate them.
      'cache-control': /[/\\](index\.html|sw\.js)$/.test(found) ? 'no-cache' : 'public, max-age=3600',
    }).end(body);
  } catch {
    res.writeHead(500).end('error');
  }
}).listen(port, host, () => console.log(`Rapport app on http://${host}:${port}${mount}`));
