// Bad days for local storage: corrupted bytes in IndexedDB must not stop the
// app; the damaged record is set aside with a clear message and the rest loads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

async function createContact(page, given, family, email) {
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  await page.getByLabel('Email 1', { exact: true }).fill(email);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
  return page.url().split('/').pop();
}

/** Overwrites every stored chunk of one record with bytes that are not Automerge data. */
async function corruptRecord(page, id) {
  return page.evaluate(async (id) => {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('rapport');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const tx = db.transaction(['chunks', 'snapshots'], 'readwrite');
    const chunks = tx.objectStore('chunks');
    // Chunks are `{ id, bytes }` under generated keys, found by record through an index.
    const keys = await new Promise((resolve) => {
      const r = chunks.index('by_record').getAllKeys(id);
      r.onsuccess = () => resolve(r.result);
    });
    for (const k of keys) chunks.put({ id, bytes: new Uint8Array([0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 5]) }, k);
    tx.objectStore('snapshots').delete(id);
    await new Promise((resolve) => { tx.oncomplete = resolve; });
    db.close();
    return keys.length;
  }, id);
}

test('a record with corrupted bytes is set aside with a clear message and the others still open', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  const broken = await createContact(page, 'Broken', 'Record', 'broken@example.org');
  await createContact(page, 'Healthy', 'Record', 'healthy@example.org');
  const changed = await corruptRecord(page, broken);
  assert.ok(changed >= 1, 'the test corrupted at least one stored chunk');

  await page.goto(`${env.server.url}/contacts`);
  await page.getByRole('listitem').filter({ hasText: 'Broken Record' }).click();
  const error = page.getByTestId('contact-error');
  await error.waitFor();
  await eventually(async () => assert.match(await error.innerText(), /could not be read and was set aside/i));
  const banner = page.getByTestId('quarantine-banner');
  await banner.waitFor();
  await eventually(async () => assert.match(await banner.innerText(), /1 record could not be read/));
  await shot(page, 'desktop-quarantined-record');

  await page.getByRole('link', { name: 'Back to contacts' }).click();
  await page.getByRole('listitem').filter({ hasText: 'Healthy Record' }).click();
  await page.getByRole('heading', { name: 'Healthy Record' }).waitFor();

  // The banner survives a reload (the quarantine is stored) and Settings lists the record.
  await page.reload();
  await page.getByTestId('quarantine-banner').waitFor();
  await page.getByRole('link', { name: 'See details' }).click();
  const list = page.getByTestId('quarantine-list');
  await list.waitFor();
  await eventually(async () => assert.match(await list.innerText(), new RegExp(broken)));
  await context.close();
});

test('custom fields defined in settings appear on the form and are validated by type', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  await page.goto(`${env.server.url}/settings`);
  await page.getByLabel('Field name').fill('Renewal date');
  await page.getByLabel('Type').selectOption({ label: 'Date' });
  await page.getByRole('button', { name: 'Add field' }).click();
  await page.getByTestId('custom-field-list').getByText('Renewal date').waitFor();

  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill('Custom');
  await page.getByLabel('Renewal date').fill('2027-03-31');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Custom' }).waitFor();
  await page.getByText('2027-03-31').waitFor();

  await page.reload();
  await page.getByText('Renewal date').waitFor();
  await page.getByText('2027-03-31').waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a first start cut short by a reload still opens the workspace', async () => {
  // The first start creates the workspace; leaving the page part-way must
  // not leave a half-made workspace that stops every later start.
  for (const delay of [50, 120, 200, 300, 450]) {
    const context = await env.browser.newContext();
    const page = await newPage(context);
    page.goto(`${env.server.url}/contacts/new`).catch(() => {});
    await new Promise((r) => setTimeout(r, delay));
    // The second navigation can be aborted by the first one finishing: retry.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await page.goto(`${env.server.url}/contacts/new`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await page.getByLabel('Given name').waitFor({ timeout: 20000 });
    await context.close();
  }
});
