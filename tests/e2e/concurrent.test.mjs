// Two tabs of one browser editing the same record: a form left open must
// not revert what the other tab saved, it says the record changed, and a
// field changed in both becomes a conflict that every record's page shows
// by the field's name, with buttons that say what they do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

/** Two tabs (pages) of one browser context. */
async function twoTabs() {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const a = await newPage(context);
  const b = await newPage(context);
  return { context, a, b };
}

async function createContact(page, fields) {
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByRole('heading', { name: 'New contact' }).waitFor();
  for (const [label, value] of Object.entries(fields)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByTestId('contact-page').waitFor();
  return new URL(page.url()).pathname;
}

async function openForm(page, url, heading) {
  await page.goto(`${env.server.url}${url}`);
  await page.getByRole('heading', { name: heading }).waitFor();
}

async function fillAndSave(page, fields, button = 'Save changes') {
  for (const [label, value] of Object.entries(fields)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: button }).click();
}

/** The conflict card's choice that is not in use for `field`, and its value. */
async function otherChoice(page, field) {
  const card = page.getByTestId('conflicts');
  const use = card.getByRole('button', { name: new RegExp(`^Use .* for ${field}$`) });
  await use.first().waitFor();
  return use.first();
}

test('a form left open saves only what it changed, and says the contact changed elsewhere', async () => {
  const { context, a, b } = await twoTabs();
  const url = await createContact(a, { 'Given name': 'Ada', 'Family name': 'Lovelace', City: 'London', Tags: 'math' });
  await openForm(a, `${url}/edit`, 'Edit Ada Lovelace');
  await openForm(b, `${url}/edit`, 'Edit Ada Lovelace');

  // The first tab moves her to Bergen.
  await fillAndSave(a, { City: 'Bergen' });
  await a.getByTestId('contact-page').waitFor();

  // The second tab's form, still showing London, says so at once.
  const notice = b.getByTestId('changed-elsewhere');
  await eventually(async () => assert.match(await notice.innerText(), /This contact was changed elsewhere since you opened it: City/));
  assert.equal(await b.getByLabel('City', { exact: true }).inputValue(), 'London', 'the form keeps what the user sees');
  await shot(b, 'form-changed-elsewhere');

  // It changes the tags only and saves: the city stays Bergen everywhere.
  await fillAndSave(b, { Tags: 'math, vip' });
  await b.getByTestId('contact-page').waitFor();
  await eventually(async () => assert.match(await b.locator('.details dl').innerText(), /Bergen/));
  assert.match(await b.locator('.details dl').innerText(), /vip/);
  await a.reload();
  await eventually(async () => assert.match(await a.locator('.details dl').innerText(), /Bergen[\s\S]*vip|vip[\s\S]*Bergen/));
  assert.equal(await b.getByTestId('conflicts').count(), 0, 'nothing was changed in both places');
  assert.deepEqual([...a.errors, ...b.errors], []);
  await context.close();
});

test('a contact field changed in two tabs at once becomes a conflict, named, with a one-click pick', async () => {
  const { context, a, b } = await twoTabs();
  const url = await createContact(a, { 'Given name': 'Grace', 'Family name': 'Hopper', 'Job title': 'Engineer', 'Phone 1': '+44 20 7946 0958' });
  await openForm(a, `${url}/edit`, 'Edit Grace Hopper');
  await openForm(b, `${url}/edit`, 'Edit Grace Hopper');
  await fillAndSave(a, { 'Job title': 'Head of Procurement', 'Phone 1': '+44 20 7946 1111' });
  await a.getByTestId('contact-page').waitFor();
  await eventually(async () => assert.match(await b.getByTestId('changed-elsewhere').innerText(), /Job title/));
  await fillAndSave(b, { 'Job title': 'Buyer', 'Phone 1': '+44 20 7946 2222' });
  await b.getByTestId('contact-page').waitFor();

  const card = b.getByTestId('conflicts');
  await card.waitFor();
  const text = await card.innerText();
  assert.match(text, /Job title/);
  assert.match(text, /Phone 1/);
  assert.match(text, /Notes are never a conflict/, 'the card says notes interleave');
  // Each choice says what it does.
  await card.getByRole('button', { name: /^(Use|Keep) Head of Procurement for Job title/ }).waitFor();
  await card.getByRole('button', { name: /^(Use|Keep) Buyer for Job title/ }).waitFor();
  await shot(b, 'contact-conflict');

  // Pick the value not in use: it is used, and the conflict is gone.
  const pick = await otherChoice(b, 'Job title');
  const chosen = (await pick.innerText()).split('\n')[0].replace(/^Use /, '').trim();
  await pick.click();
  await eventually(async () => assert.doesNotMatch(await card.innerText(), /Job title/));
  await eventually(async () => assert.match(await b.locator('.details dl').innerText(), new RegExp(chosen)));
  // The other tab sees the conflict that is left (Phone 1) and the picked title.
  await a.reload();
  await eventually(async () => assert.match(await a.getByTestId('conflicts').innerText(), /Phone 1/));
  assert.match(await a.locator('.details dl').innerText(), new RegExp(chosen));
  assert.deepEqual([...a.errors, ...b.errors], []);
  await context.close();
});

test('companies, deals and tasks show their conflicts by field name too', async () => {
  const { context, a, b } = await twoTabs();

  // A company's industry, changed in two tabs.
  await a.goto(`${env.server.url}/companies/new`);
  await fillAndSave(a, { 'Company name': 'Northwind', Industry: 'Retail' }, 'Create company');
  await a.getByRole('heading', { name: 'Northwind' }).waitFor();
  const company = new URL(a.url()).pathname;
  await openForm(a, `${company}/edit`, 'Edit Northwind');
  await openForm(b, `${company}/edit`, 'Edit Northwind');
  await fillAndSave(a, { Industry: 'Logistics' });
  await a.getByRole('heading', { name: 'Northwind' }).waitFor();
  await eventually(async () => assert.match(await b.getByTestId('changed-elsewhere').innerText(), /This company was changed elsewhere.*Industry/));
  await fillAndSave(b, { Industry: 'Wholesale' });
  await b.getByRole('heading', { name: 'Northwind' }).waitFor();
  await (await otherChoice(b, 'Industry')).waitFor();
  await shot(b, 'company-conflict');

  // A deal's value.
  await a.goto(`${env.server.url}/deals/new`);
  await fillAndSave(a, { Title: 'Initech renewal', Value: '1000' }, 'Create deal');
  await a.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  const deal = new URL(a.url()).pathname;
  await openForm(a, `${deal}/edit`, 'Edit Initech renewal');
  await openForm(b, `${deal}/edit`, 'Edit Initech renewal');
  await fillAndSave(a, { Value: '2000' });
  await a.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  await eventually(async () => assert.match(await b.getByTestId('changed-elsewhere').innerText(), /Value/));
  await fillAndSave(b, { Value: '3000' });
  await b.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  const value = await otherChoice(b, 'Value');
  assert.match(await value.innerText(), /[23],000/, 'a value is shown as money');

  // A task's title (a task has no page: its form shows the conflict).
  await a.goto(`${env.server.url}/tasks/new`);
  await fillAndSave(a, { Title: 'Call Ada' }, 'Add task');
  await a.getByRole('link', { name: 'Edit Call Ada' }).click();
  await a.getByRole('heading', { name: /Edit/ }).waitFor();
  const task = new URL(a.url()).pathname;
  await openForm(b, task, /Edit/);
  await fillAndSave(a, { Title: 'Call Ada back' }, 'Save task');
  await a.getByRole('link', { name: 'Edit Call Ada back' }).waitFor();
  await eventually(async () => assert.match(await b.getByTestId('changed-elsewhere').innerText(), /This task was changed elsewhere.*Title/));
  await fillAndSave(b, { Title: 'Call Ada on Monday' }, 'Save task');
  await b.getByRole('link', { name: /Edit Call Ada/ }).first().waitFor();
  await b.goto(`${env.server.url}${task}`);
  await (await otherChoice(b, 'Title')).waitFor();
  assert.deepEqual([...a.errors, ...b.errors], []);
  await context.close();
});
