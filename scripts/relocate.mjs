// Moves a built app to another path without rebuilding it: rewrites the
// <base href> of index.html and 404.html, the only place a build names its
// public URL (scripts/pwa-build.mjs makes every other link relative; sw.js
// and the manifest resolve against their own location).
//   node scripts/relocate.mjs <dir> <public-url>      e.g. dist /crm/
// The result is what `trunk build --release --public-url /crm/` produces.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, publicUrl] = process.argv.slice(2);
if (!dir || !publicUrl || !/^\/([^/?#"<>\s]+\/)*$/.test(publicUrl)) {
  console.error('usage: node scripts/relocate.mjs <dir> <public-url>   (a path that starts and ends with /, e.g. /crm/)');
  process.exit(1);
}
for (const name of ['index.html', '404.html']) {
  const path = join(dir, name);
  if (!existsSync(path)) continue;
  const html = readFileSync(path, 'utf8');
  if (!/<base href="[^"]*"/.test(html)) {
    console.error(`${path} has no <base href>: was it built with this project's Trunk.toml?`);
    process.exit(1);
  }
  writeFileSync(path, html.replace(/<base href="[^"]*"/, `<base href="${publicUrl}"`));
}
console.log(`${dir} now runs at ${publicUrl}`);
