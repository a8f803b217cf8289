// A plain static file server for dist/ with the one rule a single-page app
// needs: unknown paths without a file extension get index.html.
// Usage: node scripts/serve.mjs <dir> [port] [host]
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'dist');
const port = Number(process.argv[3] ?? 8080);
const host = process.argv[4] ?? '127.0.0.1';
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
  const rel = normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, '');
  let path = join(root, rel);
  if (!path.startsWith(root)) { res.writeHead(403).end('forbidden'); return; }
  let found = await file(path) ?? await file(join(path, 'index.html'));
  if (!found && !extname(rel)) found = join(root, 'index.html');
  if (!found) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
  try {
    const body = await readFile(found);
    res.writeHead(200, {
      'content-type': types[extname(found)] ?? 'application/octet-stream',
      'cache-control': found.endsWith('index.html') ? 'no-cache' : 'public, max-age=3600',
    }).end(body);
  } catch {
    res.writeHead(500).end('error');
  }
}).listen(port, host, () => console.log(`Rapport app on http://${host}:${port}/`));
