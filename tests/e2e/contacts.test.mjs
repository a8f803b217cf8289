// The foundation's user journey, driven like a person would: by visible
// labels and roles, against the release build served as static files.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

async function statusOf(page, purpose) {
  return page.getByRole('row', { name: new RegExp(purpose) }).getByTestId('consent-status').innerText();
}

test('create a contact, fix validation, record consent, search, and find it all after a reload', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/`);

  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await page.getByText('No contacts yet').waitFor();
  await shot(page, 'desktop-empty-list');

  await page.getByRole('link', { name: 'Add your first contact' }).click();
  await page.getByRole('heading', { name: 'New contact' }).waitFor();

  // Invalid input is refused with a message next to each field.
  await page.getByLabel('Email 1', { exact: true }).fill('ada-at-example');
  await page.getByLabel('Phone 1', { exact: true }).fill('call me maybe');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByText('Some fields need attention').waitFor();
  const givenError = page.locator('#given_name-error');
  await eventually(async () => assert.equal(await givenError.innerText(), 'Required'));
  await eventually(async () => assert.match(await page.locator('#email-0-error').innerText(), /email address/i));
  await eventually(async () => assert.match(await page.locator('#phone-0-error').innerText(), /phone number/i));
  await eventually(async () => assert.equal(await page.getByLabel('Given name').getAttribute('aria-invalid'), 'true'));
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.id), 'given_name', 'focus moves to the first invalid field'));
  await shot(page, 'desktop-form-errors');

  // Fix it.
  await page.getByLabel('Given name').fill('Ada');
  await page.getByLabel('Family name').fill('Lovelace');
  await page.getByLabel('Email 1', { exact: true }).fill('ada@example.org');
  await page.getByLabel('Phone 1', { exact: true }).fill('020 7946 0958');
  await page.getByLabel('Company').fill('Analytical Engines');
  await page.getByLabel('Job title').fill('Mathematician');
  await page.getByLabel('Tags').fill('vip, math');
  await page.getByRole('button', { name: 'Create contact' }).click();

  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await page.locator('a[href="tel:+442079460958"]').waitFor(); // normalised to E.164
  await eventually(async () => assert.equal(await statusOf(page, 'Marketing email'), 'Never asked'));

  // Grant, then withdraw, consent for marketing email.
  await page.getByRole('button', { name: 'Grant Marketing email' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByLabel('Source').selectOption({ label: 'Phone call' });
  await dialog.getByLabel('Note (optional)').fill('Asked on the phone');
  await dialog.getByRole('button', { name: 'Record consent' }).click();
  await eventually(async () => assert.equal(await statusOf(page, 'Marketing email'), 'Granted'));
  await dialog.waitFor({ state: 'hidden' });

  await page.getByRole('button', { name: 'Withdraw Marketing email' }).click();
  await dialog.getByRole('button', { name: 'Record withdrawal' }).click();
  await eventually(async () => assert.equal(await statusOf(page, 'Marketing email'), 'Withdrawn'));
  const history = page.getByTestId('consent-history').locator('li');
  await eventually(async () => assert.equal(await history.count(), 2));
  await eventually(async () => assert.match(await history.nth(0).innerText(), /Marketing email withdrawn/));
  await eventually(async () => assert.match(await history.nth(1).innerText(), /Marketing email granted[\s\S]*Asked on the phone/));
  await shot(page, 'desktop-contact');

  // Search from the list by name, phone digits, company and tag.
  await page.getByRole('link', { name: 'Contacts' }).click();
  const search = page.getByLabel('Search contacts');
  for (const q of ['lovelace', '7946 0958', 'analytical', 'vip']) {
    await search.fill(q);
    await eventually(async () => assert.equal(await page.getByTestId('contact-row').count(), 1, `search ${q}`));
  }
  await search.fill('nobody-by-this-name');
  await page.getByText('No matches').waitFor();
  await search.fill('');
  await shot(page, 'desktop-list');

  // Everything is still there after a reload.
  await page.reload();
  await page.getByTestId('contact-row').first().waitFor();
  await page.getByRole('listitem').filter({ hasText: 'Ada Lovelace' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await eventually(async () => assert.equal(await statusOf(page, 'Marketing email'), 'Withdrawn'));
  await eventually(async () => assert.equal(await page.getByTestId('consent-history').locator('li').count(), 2));
  await page.getByText('ada@example.org').waitFor();
  assert.deepEqual(page.errors, []);

  // Phone layout.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'phone-contact');
  await page.getByRole('link', { name: 'Contacts' }).click();
  await page.getByTestId('contact-row').first().waitFor();
  await shot(page, 'phone-list');
  await page.getByRole('link', { name: 'New contact' }).click();
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByText('Some fields need attention').waitFor();
  await shot(page, 'phone-form-errors');
  await context.close();
});

test('delete a contact and undo it', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill('Grace');
  await page.getByLabel('Family name').fill('Hopper');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Grace Hopper' }).waitFor();

  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('Deleted Grace Hopper').waitFor();
  await page.getByText('No contacts yet').waitFor();
  await page.getByRole('button', { name: 'Undo' }).click();
  await page.getByRole('listitem').filter({ hasText: 'Grace Hopper' }).waitFor();

  await page.reload();
  await page.getByRole('listitem').filter({ hasText: 'Grace Hopper' }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('keyboard alone: search, move through the list, open a contact', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts/new`);
  for (const [given, family] of [['Alan', 'Turing'], ['Alonzo', 'Church']]) {
    await page.goto(`${env.server.url}/contacts/new`);
    await page.getByLabel('Given name').fill(given);
    await page.getByLabel('Family name').fill(family);
    await page.getByLabel('Given name').press('Enter');
    await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
  }
  await page.goto(`${env.server.url}/contacts`);
  const search = page.getByLabel('Search contacts');
  await search.focus();
  await search.press('ArrowDown');
  await eventually(async () => assert.match(await page.evaluate(() => document.activeElement?.innerText ?? ''), /Alonzo Church/));
  await page.keyboard.press('ArrowDown');
  await eventually(async () => assert.match(await page.evaluate(() => document.activeElement?.innerText ?? ''), /Alan Turing/));
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Alan Turing' }).waitFor();
  await context.close();
});

test('two tabs of one browser see each other’s edits at once', async () => {
  const context = await env.browser.newContext();
  const a = await newPage(context);
  await a.goto(`${env.server.url}/contacts`);
  await a.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  const b = await newPage(context);
  await b.goto(`${env.server.url}/contacts`);
  await b.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();

  await a.getByRole('link', { name: 'New contact' }).click();
  await a.getByLabel('Given name').fill('Tabby');
  await a.getByLabel('Family name').fill('Shared');
  await a.getByRole('button', { name: 'Create contact' }).click();
  await a.getByRole('heading', { name: 'Tabby Shared' }).waitFor();

  // B shows the new contact without a reload, then follows an edit to its consent.
  await b.getByRole('listitem').filter({ hasText: 'Tabby Shared' }).click();
  await b.getByRole('heading', { name: 'Tabby Shared' }).waitFor();
  await a.getByRole('button', { name: 'Grant Phone and SMS' }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Record consent' }).click();
  await eventually(async () => assert.equal(await statusOf(b, 'Phone and SMS'), 'Granted'));
  assert.deepEqual([...a.errors, ...b.errors], []);
  await context.close();
});
