// Privacy journeys: restriction, the access export, and erasure checked in
// the raw bytes of IndexedDB (not through the UI).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { dumpIndexedDb, eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

async function createContact(page, given, family, email, phone) {
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  await page.getByLabel('Email 1', { exact: true }).fill(email);
  await page.getByLabel('Phone 1', { exact: true }).fill(phone);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
}

test('restrict, export and erase a contact; erasure leaves no byte of them in IndexedDB', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true });
  const page = await newPage(context);
  await createContact(page, 'Grace', 'Hopper', 'grace.hopper@example.org', '+1 202 555 0147');
  await createContact(page, 'Erin', 'Erasable', 'erin.erasable@example.org', '+44 20 7946 0321');
  await page.getByRole('button', { name: 'Grant Marketing email' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Record consent' }).click();
  await page.getByTestId('consent-history').waitFor();

  // Restriction shows as a badge here and in the list.
  await page.getByRole('button', { name: 'Restrict processing' }).click();
  await page.getByTestId('restricted-badge').waitFor();
  await page.getByRole('button', { name: 'Lift restriction' }).waitFor();

  // The access export holds the person's data and consent.
  const downloadPromise = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download data (JSON)' }).click();
  const download = await downloadPromise;
  assert.doesNotMatch(download.suggestedFilename(), /Erin|Erasable/, 'the file name carries no personal data');
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  const text = JSON.stringify(exported);
  assert.match(text, /erin\.erasable@example\.org/);
  assert.match(text, /Marketing email/);
  await eventually(async () => assert.ok(await page.getByTestId('audit-history').locator('li').count() >= 3, 'the change history lists creation, consent and restriction'));
  await shot(page, 'desktop-privacy-panel');

  const before = await dumpIndexedDb(page);
  assert.ok(before.includes('Erasable'), 'control: the contact is in IndexedDB before erasure');

  // Erase, with a preview of what goes.
  await page.getByRole('button', { name: 'Erase…' }).click();
  const preview = page.getByTestId('erase-preview');
  await preview.waitFor();
  await eventually(async () => assert.match(await preview.innerText(), /1 email address/));
  await page.getByRole('button', { name: 'Erase permanently' }).click();
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await page.getByRole('listitem').filter({ hasText: 'Grace Hopper' }).waitFor();
  await eventually(async () => assert.equal(await page.getByRole('listitem').filter({ hasText: 'Erin' }).count(), 0));

  const after = await dumpIndexedDb(page);
  for (const secret of ['Erasable', 'erin.erasable@example.org', '442079460321', 'Erin']) {
    assert.ok(!after.includes(secret), `${secret} must not remain in IndexedDB`);
  }
  assert.ok(after.includes('Hopper') && after.includes('grace.hopper@example.org'), 'other people are intact');

  // Still gone after a reload.
  await page.reload();
  await page.getByRole('listitem').filter({ hasText: 'Grace Hopper' }).waitFor();
  await eventually(async () => assert.equal(await page.getByRole('listitem').filter({ hasText: 'Erin' }).count(), 0));
  assert.deepEqual(page.errors, []);
  await context.close();
});
