// Companies, the contact ↔ company link and the activity timeline, driven by
// visible labels and roles against the release build.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

async function createCompany(page, { name, domain = '', industry = '', size = '', city = '', tags = '' }) {
  await page.goto(`${env.server.url}/companies/new`);
  await page.getByRole('heading', { name: 'New company' }).waitFor();
  await page.getByLabel('Company name').fill(name);
  if (domain) await page.getByLabel('Web domain').fill(domain);
  if (industry) await page.getByLabel('Industry').fill(industry);
  if (size) await page.getByLabel('Size (people)').selectOption({ label: size });
  if (city) await page.getByLabel('City').fill(city);
  if (tags) await page.getByLabel('Tags').fill(tags);
  await page.getByRole('button', { name: 'Create company' }).click();
  await page.getByRole('heading', { name, exact: true }).waitFor();
}

test('a company, a person at it, a call logged from the contact page, all found again after a reload', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Companies' }).click();
  await page.getByText('No companies yet').waitFor();

  // A company: the form refuses a missing name and a bad domain, next to the fields.
  await page.getByRole('link', { name: 'Add your first company' }).click();
  await page.getByLabel('Web domain').fill('not a domain');
  await page.getByRole('button', { name: 'Create company' }).click();
  await page.getByText('Some fields need attention').waitFor();
  await eventually(async () => assert.equal(await page.locator('#name-error').innerText(), 'Required'));
  await eventually(async () => assert.match(await page.locator('#domain-error').innerText(), /example\.com/));
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.id), 'name', 'focus moves to the first invalid field'));
  await page.getByLabel('Company name').fill('Analytical Engines Ltd');
  await page.getByLabel('Web domain').fill('https://www.Analytical.example/about');
  await page.getByLabel('Industry').fill('Computing');
  await page.getByLabel('Size (people)').selectOption({ label: '11–50' });
  await page.getByLabel('City').fill('London');
  await page.getByLabel('Tags').fill('key account');
  await page.getByRole('button', { name: 'Create company' }).click();
  await page.getByRole('heading', { name: 'Analytical Engines Ltd' }).waitFor();
  await page.getByRole('link', { name: 'analytical.example' }).waitFor(); // normalised
  const companyUrl = page.url();
  const companyPath = new URL(companyUrl).pathname;
  await page.getByText('No one linked yet').waitFor();
  await page.getByText('Nothing logged yet').waitFor();

  // A person at it: typing the company's name (any case) links them.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Contacts' }).click();
  await page.getByRole('link', { name: /New contact|Add your first contact/ }).first().click();
  await page.getByLabel('Given name').fill('Ada');
  await page.getByLabel('Family name').fill('Lovelace');
  await page.getByLabel('Company').fill('analytical engines');
  await eventually(async () => assert.match(await page.getByTestId('company-link-hint').innerText(), /No company has this name/));
  await page.getByLabel('Company').fill('analytical engines ltd');
  await eventually(async () => assert.equal(await page.getByTestId('company-link-hint').innerText(), 'Linked to the company Analytical Engines Ltd'));
  await eventually(async () => assert.equal(await page.locator('#company-names option').count(), 1, 'existing companies are offered'));
  await page.getByLabel('Job title').fill('Analyst');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  const contactPath = new URL(page.url()).pathname;
  const companyLink = page.getByTestId('contact-company').getByRole('link', { name: 'Analytical Engines Ltd' });
  await eventually(async () => assert.equal(await companyLink.getAttribute('href'), companyPath));
  await shot(page, 'companies-desktop-contact');

  // One click opens the call form with Call chosen and focus in the subject.
  await page.getByRole('button', { name: 'Log a call' }).click();
  const form = page.getByTestId('activity-form');
  await form.waitFor();
  await eventually(async () => assert.equal(await form.getByRole('radio', { name: 'Call' }).isChecked(), true));
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.labels?.[0]?.innerText), 'Subject'));
  await eventually(async () => assert.match(await form.getByLabel('When').inputValue(), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/, 'defaults to now'));
  await page.keyboard.type('Intro call');
  await form.getByLabel('Duration (minutes)').fill('many');
  await form.getByRole('button', { name: 'Log call' }).click();
  await eventually(async () => assert.match(await form.locator('[data-testid="field-error"]').innerText(), /Enter a number/));
  await form.getByLabel('Duration (minutes)').fill('15');
  await form.getByLabel('Outcome').fill('Connected');
  await form.getByLabel('Notes').fill('Talked about the difference engine.\nSend the paper next week.');
  await form.getByRole('button', { name: 'Log call' }).click();
  await form.waitFor({ state: 'detached' });
  const item = page.getByTestId('activity-item').filter({ hasText: 'Intro call' });
  await item.waitFor();
  const text = await item.innerText();
  assert.match(text, /15 min/);
  assert.match(text, /Connected/);
  assert.match(text, /by Me/);
  assert.match(text, /difference engine/);
  await eventually(async () => assert.equal(await item.getByRole('link', { name: 'Analytical Engines Ltd' }).getAttribute('href'), companyPath));
  await shot(page, 'companies-desktop-contact-timeline');

  // The company page lists the person and the call.
  await companyLink.click();
  await page.getByRole('heading', { name: 'Analytical Engines Ltd' }).waitFor();
  const people = page.getByTestId('company-people');
  await eventually(async () => assert.equal(await people.getByRole('link', { name: 'Ada Lovelace' }).getAttribute('href'), contactPath));
  await people.getByText('Analyst').waitFor();
  const onCompany = page.getByTestId('activity-item').filter({ hasText: 'Intro call' });
  await eventually(async () => assert.equal(await onCompany.getByRole('link', { name: 'Ada Lovelace' }).getAttribute('href'), contactPath));
  await page.getByTestId('company-deals').getByText('No deals yet').waitFor();

  // A note logged on the company page shows there, not on the person.
  await page.getByRole('group', { name: 'Log an activity' }).getByRole('button', { name: 'Note' }).click();
  await page.getByTestId('activity-form').getByLabel('Subject').fill('Account plan');
  await page.getByTestId('activity-form').getByLabel('Notes').fill('Renewal due in spring.');
  await page.getByRole('button', { name: 'Add note' }).click();
  await page.getByTestId('activity-item').filter({ hasText: 'Account plan' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('activity-item').count(), 2));
  await shot(page, 'companies-desktop-company');

  // Edit the call from the timeline, in a dialog.
  await page.getByRole('button', { name: 'Edit call “Intro call”' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Outcome').waitFor();
  await eventually(async () => assert.equal(await dialog.getByLabel('Outcome').inputValue(), 'Connected'));
  await dialog.getByLabel('Outcome').fill('Left voicemail');
  await dialog.getByRole('button', { name: 'Save changes' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await eventually(async () => assert.match(await onCompany.innerText(), /Left voicemail/));

  // Delete the note, undo it.
  await page.getByRole('button', { name: 'Delete note “Account plan”' }).click();
  await page.getByText('Deleted note “Account plan”').waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('activity-item').count(), 1));
  await page.getByRole('button', { name: 'Undo' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('activity-item').count(), 2));

  // The list: search by name, domain, industry, city and tag.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Companies' }).click();
  await createCompany(page, { name: 'Babbage & Sons', domain: 'babbage.example', industry: 'Engineering', city: 'Cambridge' });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Companies' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('company-row').count(), 2));
  const row = page.getByRole('listitem').filter({ hasText: 'Analytical Engines Ltd' });
  await eventually(async () => assert.match(await row.innerText(), /1 person/));
  const search = page.getByLabel('Search companies');
  for (const q of ['analytical', 'analytical.example', 'computing', 'london', 'key account']) {
    await search.fill(q);
    await eventually(async () => {
      await eventually(async () => assert.equal(await page.getByTestId('company-row').count(), 1, `search ${q}`));
      await eventually(async () => assert.match(await page.getByTestId('company-row').innerText(), /Analytical Engines Ltd/));
    });
  }
  await search.fill('nobody-by-this-name');
  await page.getByText('No matches').waitFor();
  await search.fill('');
  await page.getByLabel('Sort by').selectOption({ label: 'City' });
  await eventually(async () => assert.match(await page.getByTestId('company-row').first().innerText(), /Babbage/));
  await page.getByLabel('Sort by').selectOption({ label: 'Name' });
  await eventually(async () => assert.match(await page.getByTestId('company-row').first().innerText(), /Analytical/));
  await shot(page, 'companies-desktop-list');

  // Everything is still there after a reload.
  await page.reload();
  await page.getByRole('listitem').filter({ hasText: 'Analytical Engines Ltd' }).click();
  await page.getByRole('heading', { name: 'Analytical Engines Ltd' }).waitFor();
  await page.getByTestId('company-people').getByRole('link', { name: 'Ada Lovelace' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('activity-item').count(), 2));
  await eventually(async () => assert.match(await page.getByTestId('activity-item').filter({ hasText: 'Intro call' }).innerText(), /Left voicemail/));
  await page.getByTestId('company-people').getByRole('link', { name: 'Ada Lovelace' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await page.getByTestId('contact-company').getByRole('link', { name: 'Analytical Engines Ltd' }).waitFor();
  await page.getByTestId('activity-item').filter({ hasText: 'Intro call' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('activity-item').count(), 1, 'the company note is not on the person'));

  // Phone layout.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByTestId('activity-item').first().scrollIntoViewIfNeeded();
  await shot(page, 'companies-phone-contact-timeline');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.getByRole('button', { name: 'Log a call' }).click();
  await page.getByTestId('activity-form').waitFor();
  await shot(page, 'companies-phone-log-call');
  await page.keyboard.press('Escape');
  await page.getByTestId('activity-form').waitFor({ state: 'detached' });
  await page.goto(companyUrl);
  await page.getByRole('heading', { name: 'Analytical Engines Ltd' }).waitFor();
  await page.getByTestId('activity-item').first().waitFor();
  await shot(page, 'companies-phone-company');
  await page.goto(`${env.server.url}/companies`);
  await page.getByTestId('company-row').first().waitFor();
  await shot(page, 'companies-phone-list');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a deleted company is shown as deleted, never as a broken link, and undo brings it back', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  await createCompany(page, { name: 'Difference Ltd' });
  await page.getByRole('link', { name: 'Add a person' }).click();
  await eventually(async () => assert.equal(await page.getByLabel('Company').inputValue(), 'Difference Ltd', 'the company page pre-fills its name'));
  await page.getByLabel('Given name').fill('Charles');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Charles' }).waitFor();
  const contactUrl = page.url();
  await page.getByTestId('contact-company').getByRole('link', { name: 'Difference Ltd' }).click();

  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByText('Deleted Difference Ltd').waitFor();
  await page.getByText('No companies yet').waitFor();
  await page.goto(contactUrl);
  await page.getByRole('heading', { name: 'Charles' }).waitFor();
  await page.getByTestId('contact-company').getByText('Difference Ltd (deleted)').waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('contact-company').getByRole('link').count(), 0));

  // A deleted company is not offered, and a typed name does not link to it.
  await page.getByRole('link', { name: 'Edit', exact: true }).click();
  await eventually(async () => assert.match(await page.getByTestId('company-link-hint').innerText(), /No company has this name/));

  await page.goto(`${env.server.url}/companies`);
  await page.getByText('No companies yet').waitFor();
  await createCompany(page, { name: 'Restorable Ltd' });
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Undo' }).click();
  await page.getByRole('listitem').filter({ hasText: 'Restorable Ltd' }).waitFor();
  await page.reload();
  await page.getByRole('listitem').filter({ hasText: 'Restorable Ltd' }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});
