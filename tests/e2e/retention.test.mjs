// Retention and the workspace audit log: a policy puts old contacts up for
// review, bulk erasure and anonymisation are checked in the raw bytes of
// IndexedDB (not through the UI), and the audit log shows who did what and
// exports it.
//
// "Old" contacts are made honestly: the app takes every time from the page's
// clock, so the test starts that clock three years ago, creates contacts
// through the ordinary form, then moves the clock to the present. The app
// sees contacts it really wrote three years ago.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { dumpIndexedDb, eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();
const DAY = 86_400_000;

async function createContact(page, c) {
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill(c.given);
  await page.getByLabel('Family name').fill(c.family);
  await page.getByLabel('Email 1', { exact: true }).fill(c.email);
  await page.getByLabel('Phone 1', { exact: true }).fill(c.phone);
  if (c.company) await page.getByLabel('Company').fill(c.company);
  if (c.tags) await page.getByLabel('Tags').fill(c.tags);
  if (c.notes) await page.getByLabel('Notes').fill(c.notes);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${c.given} ${c.family}` }).waitFor();
}

const erin = { given: 'Erin', family: 'Erasable', email: 'erin.erasable@example.org', phone: '+44 20 7946 0321' };
const olive = {
  given: 'Olive', family: 'Oldfield', email: 'olive.oldfield@example.org', phone: '+44 20 7946 0654',
  company: 'Quincefield Orchards', tags: 'newsletter', notes: 'Asked about pear grafting in spring',
};
const rhea = { given: 'Rhea', family: 'Restricted', email: 'rhea.restricted@example.org', phone: '+44 20 7946 0777' };
const kim = { given: 'Kim', family: 'Kept', email: 'kim.kept@example.org', phone: '+44 20 7946 0888', tags: 'keep' };
const rita = { given: 'Rita', family: 'Recent', email: 'rita.recent@example.org', phone: '+44 20 7946 0999' };

test('a retention policy lists old contacts; bulk erase and anonymise leave none of their data in IndexedDB; the audit log shows and exports who did it', async () => {
  const realNow = Date.now();
  const context = await env.browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
  await context.clock.install({ time: realNow - 3 * 365 * DAY });
  const page = await newPage(context);

  // Three years ago: name myself, then create the contacts that will be old.
  await page.goto(`${env.server.url}/settings`);
  await page.getByLabel('Your name').fill('Sam Auditor');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByTestId('save-status').getByText('All changes saved').waitFor();
  for (const c of [erin, olive, kim, rhea]) await createContact(page, c);
  // Rhea is restricted (kept but not processed): listed, never preselected.
  await page.getByRole('button', { name: 'Restrict processing' }).click();
  await page.getByTestId('restricted-badge').waitFor();
  const pastYear = await page.evaluate(() => new Date().getUTCFullYear());

  // The present: one recent contact, then the policy.
  await page.clock.setSystemTime(realNow);
  await createContact(page, rita);
  await page.getByRole('link', { name: 'Settings', exact: true }).click();
  const card = page.getByTestId('retention-settings');
  await card.getByText('No policy yet').waitFor();
  await card.getByLabel('Review contacts inactive for (months)').fill('0');
  await card.getByRole('button', { name: 'Save policy' }).click();
  await card.getByText('Enter a whole number of months from 1 to 600').waitFor();
  await card.getByLabel('Review contacts inactive for (months)').fill('12');
  await card.getByLabel('Never review contacts tagged').fill('keep, partner');
  await card.getByRole('button', { name: 'Save policy' }).click();
  await card.getByTestId('retention-current').getByText(/12 months.*except those tagged keep, partner/).waitFor();
  await card.scrollIntoViewIfNeeded();
  await shot(page, 'desktop-retention-settings');

  // The review lists the old contacts, not the recent or exempt ones.
  await page.getByRole('link', { name: 'Privacy', exact: true }).click();
  await page.getByRole('heading', { name: 'Retention review' }).waitFor();
  const candidates = page.getByTestId('candidate');
  await eventually(async () => assert.equal(await candidates.count(), 3));
  const names = await candidates.locator('label').allInnerTexts();
  assert.deepEqual(names.map((n) => n.replace(/\s*Restricted$/, '').trim()).sort(), ['Erin Erasable', 'Olive Oldfield', 'Rhea Restricted']);
  const box = (name) => page.getByRole('checkbox', { name });
  await eventually(async () => assert.ok(await box('Erin Erasable').isChecked(), 'candidates start selected'));
  await eventually(async () => assert.ok(await box('Olive Oldfield').isChecked()));
  assert.ok(!(await box(/Rhea Restricted/).isChecked()), 'restricted candidates start unselected');
  await candidates.filter({ hasText: 'Rhea' }).getByTestId('candidate-restricted').waitFor();
  await shot(page, 'desktop-retention-review');

  // Erase Erin: keyboard works for the selection too.
  await box('Olive Oldfield').focus();
  await page.keyboard.press('Space');
  assert.ok(!(await box('Olive Oldfield').isChecked()));
  await page.getByRole('button', { name: 'Erase selected (1)…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByTestId('retention-preview').getByText(/^Erase 1 contact and the records only about them/).waitFor();
  await dialog.getByText('Erin Erasable').waitFor();
  await shot(page, 'desktop-retention-confirm');
  await dialog.getByRole('button', { name: 'Erase 1 contact permanently' }).click();
  await page.getByTestId('retention-done').getByText('Erased 1 contact.').waitFor();
  await eventually(async () => assert.equal(await candidates.count(), 2));
  await eventually(async () => assert.equal(await candidates.filter({ hasText: 'Erin' }).count(), 0));

  // A second tab has Olive's edit form open while she is anonymised.
  const tab = await newPage(context);
  await tab.goto(`${env.server.url}/contacts`);
  await tab.getByRole('listitem').filter({ hasText: 'Olive Oldfield' }).click();
  await tab.getByRole('heading', { name: 'Olive Oldfield' }).waitFor();
  await tab.getByRole('link', { name: 'Edit' }).click();
  await tab.getByLabel('Job title', { exact: true }).waitFor();

  // Anonymise Olive.
  await box('Olive Oldfield').check();
  await page.getByRole('button', { name: 'Anonymise selected (1)…' }).click();
  await dialog.getByTestId('retention-preview').getByText(/^Anonymise 1 contact: names, email addresses/).waitFor();
  await dialog.getByRole('button', { name: 'Anonymise 1 contact' }).click();
  await page.getByTestId('retention-done').getByText('Anonymised 1 contact.').waitFor();
  await eventually(async () => assert.equal(await candidates.count(), 1, 'an anonymised contact no longer comes up'));
  // The stale form cannot write her old details back.
  await tab.getByLabel('Job title', { exact: true }).fill('Head gardener');
  await tab.getByRole('button', { name: 'Save changes' }).click();
  await tab.getByText(/anonymised after it was opened/).waitFor();
  await shot(tab, 'desktop-stale-form-refused');
  await tab.close();
  assert.ok(!(await box(/Rhea Restricted/).isChecked()));

  // Raw storage: neither person's identifying data is left anywhere.
  const dump = await dumpIndexedDb(page);
  for (const secret of ['Erasable', 'erin.erasable@example.org', '442079460321', 'Erin',
    'Oldfield', 'olive.oldfield@example.org', '442079460654', 'Olive', 'Quincefield', 'pear grafting', 'Head gardener']) {
    assert.ok(!dump.includes(secret), `${secret} must not remain in IndexedDB`);
  }
  for (const kept of ['Restricted', 'rhea.restricted@example.org', 'Recent', 'Kept', 'Anonymised contact', 'newsletter']) {
    assert.ok(dump.includes(kept), `${kept} is still stored`);
  }
  await page.getByRole('link', { name: 'Contacts', exact: true }).click();
  await page.getByRole('listitem').filter({ hasText: 'Anonymised contact' }).waitFor();
  await eventually(async () => assert.equal(await page.getByRole('listitem').filter({ hasText: /Erin|Olive/ }).count(), 0));

  // The audit log: every record's history, by member, exportable.
  await page.getByRole('link', { name: 'Privacy', exact: true }).click();
  await page.getByRole('link', { name: 'Audit log', exact: true }).click();
  const log = page.getByTestId('audit-log');
  await log.getByText(/History of all \d+ records loaded/).waitFor();
  const entries = page.getByTestId('log-entry');
  await entries.filter({ hasText: /^Erased/ }).filter({ hasText: 'by Sam Auditor' }).first().waitFor();
  await entries.filter({ hasText: 'Rewritten without history (epoch 1)' }).filter({ hasText: 'Anonymised contact' }).waitFor();
  await entries.filter({ hasText: 'Rhea Restricted' }).filter({ hasText: 'Restriction' }).waitFor();
  await log.getByLabel('Member').selectOption({ label: 'Sam Auditor' });
  await log.getByLabel('Record kind').selectOption({ label: 'Contacts' });
  await shot(page, 'desktop-audit-log');

  const downloadPromise = page.waitForEvent('download');
  await log.getByRole('button', { name: 'Export CSV' }).click();
  const download = await downloadPromise;
  assert.match(download.suggestedFilename(), /^rapport-audit-log-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8').split('\r\n');
  assert.equal(csv[0], 'when,member,member_id,action,record_kind,record_id,record,fields,change');
  const rows = csv.slice(1).filter(Boolean);
  assert.ok(rows.length >= 6, `the export holds the contacts' entries (${rows.length})`);
  assert.ok(rows.every((r) => r.includes(',Sam Auditor,') && r.includes(',contact,')), 'only the filtered member and kind');
  const rheaCreated = rows.find((r) => r.includes(',Created,') && r.includes('Rhea Restricted'));
  assert.ok(rheaCreated?.startsWith(`${pastYear}-`), `Rhea's creation carries the time it was made: ${rheaCreated}`);
  assert.ok(rows.some((r) => r.includes(',Erased,')), 'erasures are in the log');
  assert.ok(!csv.join('\n').includes('Erasable') && !csv.join('\n').includes('Oldfield'), 'the log names no erased or anonymised person');

  // A date range from today leaves out what happened three years ago.
  const today = await page.evaluate(() => new Date().toLocaleDateString('en-CA'));
  await log.getByLabel('From').fill(today);
  await entries.filter({ hasText: 'Rita Recent' }).first().waitFor();
  await eventually(async () => assert.equal(await entries.filter({ hasText: 'Rhea Restricted' }).count(), 0));

  const jsonPromise = page.waitForEvent('download');
  await log.getByRole('button', { name: 'Export JSON' }).click();
  const json = JSON.parse(readFileSync(await (await jsonPromise).path(), 'utf8'));
  assert.ok(json.length >= 1 && json.every((e) => e.member.name === 'Sam Auditor' && e.record.kind === 'contact'));
  assert.ok(json.some((e) => e.record.title === 'Rita Recent' && e.action === 'created'));

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await log.getByLabel('From').fill('');
  await shot(page, 'phone-audit-log');
  await page.getByRole('link', { name: 'Retention review', exact: true }).click();
  await page.getByTestId('candidate').first().waitFor();
  await shot(page, 'phone-retention-review');
  await box(/Rhea Restricted/).check();
  await page.getByRole('button', { name: 'Erase selected (1)…' }).click();
  await dialog.getByText('1 of them is restricted').waitFor();
  await shot(page, 'phone-retention-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  assert.deepEqual(page.errors, []);
  await context.close();
});
