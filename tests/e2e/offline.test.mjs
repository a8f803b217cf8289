// The field rep's week: open Rapport once with a network, then work with
// none. And the admin's deploys: served at the root or under a sub-path,
// and a new version reaching open tabs without costing anyone their input.
//
// Offline here means both: the browser context is set offline, and the
// server is stopped, so nothing can come from it.
// RAPPORT_DIST=<dir> tests another build than dist/.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { eventually, freePort, launch, newPage, shot } from './harness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = resolve(root, process.env.RAPPORT_DIST ?? 'dist');
const PHONE = { width: 390, height: 844 };

let browser;
const cleanup = [];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const f of cleanup.reverse()) await f();
});

/** A copy of the build, optionally moved to another public URL, that a test may change. */
function copyOfBuild(publicUrl) {
  const dir = mkdtempSync(join(tmpdir(), 'rapport-dist-'));
  cpSync(dist, dir, { recursive: true });
  if (publicUrl !== '/') execFileSync(process.execPath, [join(root, 'scripts', 'relocate.mjs'), dir, publicUrl], { stdio: 'ignore' });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Serves `dir` at `mount` with scripts/serve.mjs; can be stopped and started again on the same port. */
async function serve(dir, mount) {
  const port = await freePort();
  let proc;
  const server = {
    origin: `http://127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}${mount}`,
    async start() {
      proc = spawn(process.execPath, [join(root, 'scripts', 'serve.mjs'), dir, String(port), '127.0.0.1', mount], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise((resolve, reject) => {
        proc.stdout.once('data', resolve);
        proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
      });
    },
    async stop() {
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill();
      await exited;
    },
  };
  await server.start();
  cleanup.push(() => server.stop());
  return server;
}

/** Waits until the service worker has cached the app and controls the page. */
async function offlineReady(page) {
  await eventually(async () => {
    const state = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.ready;
      return { active: registration.active?.state, controlled: !!navigator.serviceWorker.controller, scope: registration.scope };
    });
    assert.equal(state.active, 'activated');
    assert.ok(state.controlled, 'the page is controlled by the service worker');
    return state;
  }, 30000);
  return page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
}

async function createContact(page, given, family, more = {}) {
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  for (const [label, value] of Object.entries(more)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
}

async function listNames(page) {
  await page.getByTestId('contact-row').first().waitFor();
  return page.getByTestId('contact-row').locator('strong').allInnerTexts();
}

for (const [mount, viewport, label] of [['/', PHONE, 'at the root, on a phone'], ['/crm/', undefined, 'under /crm/']]) {
  test(`after one visit the app opens, reads and writes with no network (${label})`, async () => {
    const server = await serve(copyOfBuild(mount), mount);
    const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 800 } });
    const page = await newPage(context);
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, `${mount}contacts`, 'the router honours the public URL');
    await eventually(async () => assert.equal(await offlineReady(page), server.url, 'the worker is scoped to the public URL'));

    await page.getByRole('link', { name: /first contact|New contact/ }).first().click();
    await createContact(page, 'Olivia', 'Online', {
      'Email 1': 'olivia@example.org', 'Phone 1': '+44 20 7946 0123', Company: 'Northwind Traders', 'Job title': 'Buyer', Tags: 'key account, north',
    });
    const contactUrl = page.url();

    await context.setOffline(true);
    await server.stop();
    await page.reload();
    await page.getByRole('heading', { name: 'Olivia Online' }).waitFor();
    assert.equal(page.url(), contactUrl);
    if (viewport) await shot(page, 'phone-offline-contact');

    // A page never opened before also comes from the cache.
    await page.goto(`${server.url}contacts/new`);
    await page.getByRole('heading', { name: 'New contact' }).waitFor();
    if (viewport) await shot(page, 'phone-offline-form');
    await createContact(page, 'Frank', 'Offline');
    await page.getByRole('link', { name: 'Contacts', exact: true }).click();
    assert.deepEqual((await listNames(page)).sort(), ['Frank Offline', 'Olivia Online']);
    if (viewport) await shot(page, 'phone-offline-list');

    await server.start();
    await context.setOffline(false);
    await page.reload();
    assert.deepEqual((await listNames(page)).sort(), ['Frank Offline', 'Olivia Online']);
    assert.deepEqual(page.errors, []);
    await context.close();
  });
}

/** What a deploy does to the files: a changed index.html, and the sw.js the build writes for it. */
function deploy(dir, build) {
  for (const name of ['index.html', '404.html']) {
    const path = join(dir, name);
    const html = readFileSync(path, 'utf8').replace(/\n?<meta name="rapport-test-build"[^>]*>/, '');
    writeFileSync(path, html.replace('<title>', `<meta name="rapport-test-build" content="${build}">\n    <title>`));
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'pwa-build.mjs'), dir], { stdio: 'ignore' });
}

const runningBuild = (page) => page.evaluate(() => document.querySelector('meta[name="rapport-test-build"]')?.content ?? 'first');

/** The app checks for a new version when the network comes back (and hourly, and on every load). */
async function comeBackOnline(context) {
  await context.setOffline(true);
  await context.setOffline(false);
}

test('a deployed update is offered, and reloading waits until the form being typed in is saved', async () => {
  const dir = copyOfBuild('/');
  const server = await serve(dir, '/');
  const context = await browser.newContext({ viewport: PHONE });
  const page = await newPage(context);
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await offlineReady(page);

  // Half-way through a new contact, a new version is deployed.
  await page.getByRole('link', { name: /first contact|New contact/ }).first().click();
  await page.getByLabel('Given name').fill('Dana');
  deploy(dir, 'second');
  await comeBackOnline(context);
  const banner = page.getByTestId('update-banner');
  await banner.waitFor({ timeout: 30000 });
  await eventually(async () => assert.match(await banner.innerText(), /A new version of Rapport is available/));
  await eventually(async () => assert.match(await banner.innerText(), /not saved yet/));
  await eventually(async () => assert.equal(await banner.getByRole('button', { name: 'Reload', exact: true }).count(), 0, 'no reload is offered over unsaved input'));
  await shot(page, 'phone-update-unsaved');

  await banner.getByRole('button', { name: 'Reload when saved' }).click();
  await banner.getByText('It will load as soon as your changes are saved').waitFor();
  await page.waitForTimeout(1500);
  await eventually(async () => assert.equal(await runningBuild(page), 'first', 'still the old version: nothing was reloaded'));
  await eventually(async () => assert.equal(await page.getByLabel('Given name').inputValue(), 'Dana', 'the input is still there'));

  // Saving the contact lets the update go ahead.
  await page.getByLabel('Family name').fill('Draft');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await eventually(async () => assert.equal(await runningBuild(page), 'second'), 30000);
  await page.getByRole('heading', { name: 'Dana Draft' }).waitFor();
  await eventually(async () => assert.equal(await banner.count(), 0));

  // With nothing unsaved, "Reload" is offered straight away.
  deploy(dir, 'third');
  await comeBackOnline(context);
  await banner.waitFor({ timeout: 30000 });
  await shot(page, 'phone-update-ready');
  await banner.getByRole('button', { name: 'Reload', exact: true }).click();
  await eventually(async () => assert.equal(await runningBuild(page), 'third'), 30000);
  await page.getByRole('heading', { name: 'Dana Draft' }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('Chromium finds the app installable: manifest, icons, service worker, no inline script', async () => {
  const manifest = JSON.parse(readFileSync(join(dist, 'public', 'manifest.webmanifest'), 'utf8'));
  for (const size of ['192x192', '512x512']) {
    const icon = manifest.icons.find((i) => i.sizes === size && i.type === 'image/png');
    assert.ok(icon, `a ${size} PNG icon`);
    const png = readFileSync(join(dist, 'public', icon.src));
    assert.equal(png.readUInt32BE(16), Number(size.split('x')[0]), `${icon.src} is ${size}`);
  }
  const index = readFileSync(join(dist, 'index.html'), 'utf8');
  assert.doesNotMatch(index, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline scripts (the CSP allows none)');

  const server = await serve(copyOfBuild('/crm/'), '/crm/');
  const context = await browser.newContext();
  const page = await newPage(context);
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await offlineReady(page);
  const cdp = await context.newCDPSession(page);
  const { errors, data, url } = await cdp.send('Page.getAppManifest');
  assert.equal(url, `${server.url}public/manifest.webmanifest`);
  assert.deepEqual(errors, []);
  const parsed = JSON.parse(data);
  assert.equal(parsed.display, 'standalone');
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  // Playwright's contexts are incognito ones, where Chromium never installs;
  // anything else (manifest, icons, worker, scope) would be listed here.
  assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), []);
  assert.deepEqual(page.errors, []);
  await context.close();
});
