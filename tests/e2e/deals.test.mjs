// Deals end to end: a company and deals made through the forms, cards
// dragged across the board with the mouse and moved with the keyboard, a
// deal lost with its reason, column totals checked against the forecast,
// pipeline settings, and everything still there after a reload.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, freePort, launch, newPage, shot } from './harness.mjs';

// The release build in dist/, or another build directory named by E2E_DIST
// (handy while dist/ is being rebuilt by something else).
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = { server: null, browser: null };
before(async () => {
  const port = await freePort();
  const dist = resolve(root, process.env.E2E_DIST ?? 'dist');
  const proc = spawn(process.execPath, [join(root, 'scripts', 'serve.mjs'), dist, String(port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => { if (!(await fetch(`${url}/`)).ok) throw new Error('not up'); }, 15000);
  env.server = { url, stop: () => proc.kill() };
  env.browser = await launch();
});
after(async () => {
  await env.browser?.close();
  env.server?.stop();
});

/** Today's local date in the browser, as a date input wants it. */
async function localToday(page) {
  return page.evaluate(() => {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  });
}

const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
const column = (page, stage) => page.locator(`[data-testid="board-column"][data-stage="${stage}"]`);
const card = (page, title) => page.getByTestId('deal-card').filter({ hasText: title });

async function columnFigures(page, stage) {
  const col = column(page, stage);
  return {
    count: await col.getByTestId('column-count').innerText(),
    total: await col.getByTestId('column-total').innerText(),
    weighted: await col.getByTestId('column-weighted').innerText(),
  };
}

async function createDeal(page, { title, value, close, company }) {
  await page.goto(`${env.server.url}/deals/new`);
  await page.getByRole('heading', { name: 'New deal' }).waitFor();
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Value').fill(value);
  if (close) await page.getByLabel('Expected close date').fill(close);
  if (company) await page.getByLabel('Company').selectOption({ label: company });
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByRole('heading', { name: title }).waitFor();
}

test('deals move across the board by mouse and keyboard, are lost with a reason, and add up in the forecast', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/`);
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();

  // A company, made through its form.
  await nav(page, 'Companies').click();
  await page.goto(`${env.server.url}/companies/new`);
  await page.getByLabel('Company name').fill('Initech');
  await page.getByRole('button', { name: 'Create company' }).click();
  await page.getByRole('heading', { name: 'Initech' }).waitFor();

  // A person to link to the deal.
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill('Ada');
  await page.getByLabel('Family name').fill('Lovelace');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();

  // The board starts empty and says what to do.
  await nav(page, 'Deals').click();
  await page.getByText('No deals yet').waitFor();
  await page.getByRole('link', { name: 'Add your first deal' }).click();

  // The form refuses what it cannot use, next to the field, focus on the first.
  await page.getByRole('heading', { name: 'New deal' }).waitFor();
  await page.getByLabel('Value').fill('12,5x');
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByText('Some fields need attention').waitFor();
  await eventually(async () => assert.equal(await page.locator('#title-error').innerText(), 'Required'));
  await eventually(async () => assert.match(await page.locator('#value-error').innerText(), /amount/i));
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.id), 'title'));
  await eventually(async () => assert.equal(await page.getByLabel('Probability (%)').getAttribute('placeholder'), '10% (stage default)'));

  const today = await localToday(page);
  await page.getByLabel('Title').fill('Initech renewal');
  await page.getByLabel('Value').fill('10,000');
  await page.getByLabel('Expected close date').fill(today);
  await page.getByLabel('Company').selectOption({ label: 'Initech' });
  await page.getByRole('searchbox', { name: 'Contacts' }).fill('lovel');
  await page.getByRole('button', { name: 'Link Ada Lovelace' }).click();
  await page.getByRole('button', { name: 'Remove Ada Lovelace' }).waitFor();
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('deal-contacts').getByRole('link').innerText(), 'Ada Lovelace'));
  await eventually(async () => assert.equal(await page.getByTestId('deal-stage').innerText(), 'Lead'));
  await eventually(async () => assert.equal(await page.getByTestId('deal-company').getByRole('link').innerText(), 'Initech'));

  await createDeal(page, { title: 'Globex pilot', value: '4000', close: today });
  await createDeal(page, { title: 'Umbrella expansion', value: '2000' });

  // Drag Initech renewal from Lead to Qualified, then to Proposal.
  await nav(page, 'Deals').click();
  await card(page, 'Initech renewal').waitFor();
  await eventually(async () => assert.match(await card(page, 'Initech renewal').innerText(), /Initech\n/));
  await card(page, 'Initech renewal').dragTo(column(page, 'qualified'));
  await column(page, 'qualified').getByTestId('deal-card').filter({ hasText: 'Initech renewal' }).waitFor();
  await card(page, 'Initech renewal').dragTo(column(page, 'proposal'));
  await column(page, 'proposal').getByTestId('deal-card').filter({ hasText: 'Initech renewal' }).waitFor();
  await eventually(async () => assert.deepEqual(await columnFigures(page, 'proposal'), { count: '1 deal', total: '€10k', weighted: '€5k' }));

  // Then with the keyboard: focus the card, Alt+→ moves it one stage on.
  await page.getByRole('link', { name: 'Initech renewal' }).focus();
  await page.keyboard.press('Alt+ArrowRight');
  await column(page, 'negotiation').getByTestId('deal-card').filter({ hasText: 'Initech renewal' }).waitFor();
  await eventually(async () => assert.match(await page.getByTestId('board-announcer').innerText(), /Moved Initech renewal to Negotiation/));
  // Focus stays on the moved card, so the next key press moves it again.
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Initech renewal'));

  // The Move menu works from the keyboard too: Umbrella to Qualified.
  await page.getByRole('button', { name: 'Move Umbrella expansion' }).focus();
  await page.keyboard.press('Enter');
  const menu = page.getByTestId('move-dialog');
  await menu.getByRole('button', { name: 'Qualified' }).waitFor();
  await menu.getByRole('button', { name: 'Qualified' }).focus();
  await page.keyboard.press('Enter');
  await column(page, 'qualified').getByTestId('deal-card').filter({ hasText: 'Umbrella expansion' }).waitFor();

  // Dropping Globex on Lost asks why; an empty reason is refused.
  await card(page, 'Globex pilot').dragTo(column(page, 'lost'));
  const lost = page.getByTestId('lost-dialog');
  await lost.getByRole('heading', { name: 'Why was Globex pilot lost?' }).waitFor();
  await lost.getByRole('button', { name: 'Mark as lost' }).click();
  await lost.getByText('Say why the deal was lost').waitFor();
  await lost.getByLabel('Reason').fill('Went with a cheaper vendor');
  await lost.getByRole('button', { name: 'Mark as lost' }).click();
  await column(page, 'lost').getByTestId('deal-card').filter({ hasText: 'Globex pilot' }).waitFor();
  await lost.waitFor({ state: 'hidden' });

  // Column totals: count, value and value × probability.
  await eventually(async () => assert.deepEqual(await columnFigures(page, 'lead'), { count: '0 deals', total: '€0', weighted: '€0' }));
  await eventually(async () => assert.deepEqual(await columnFigures(page, 'qualified'), { count: '1 deal', total: '€2k', weighted: '€500' }));
  await eventually(async () => assert.deepEqual(await columnFigures(page, 'negotiation'), { count: '1 deal', total: '€10k', weighted: '€7.5k' }));
  await eventually(async () => assert.deepEqual(await columnFigures(page, 'lost'), { count: '1 deal', total: '€4k', weighted: '€0' }));
  await shot(page, 'deals-board-desktop');

  // A monthly target, set in Settings.
  await nav(page, 'Settings').click();
  await page.getByRole('link', { name: 'Pipelines, stages, currency and target' }).click();
  await page.getByLabel('Monthly sales target').fill('20000');
  await page.getByRole('button', { name: 'Save currency and target' }).click();
  await page.getByText('Currency and target saved').waitFor();

  // The forecast agrees with the board: this month holds the open deal's
  // weighted value; the undated one is listed apart with a link.
  await nav(page, 'Forecast').click();
  await page.getByRole('heading', { name: 'Forecast' }).waitFor();
  const thisMonth = page.getByTestId('month-row').first();
  await eventually(async () => assert.equal(await thisMonth.getByTestId('month-weighted').innerText(), '€7,500.00'));
  await eventually(async () => assert.equal(await thisMonth.getByTestId('month-total').innerText(), '€7,500.00'));
  await eventually(async () => assert.equal(await page.getByTestId('month-row').count(), 6));
  await eventually(async () => assert.equal(await page.getByTestId('owner-row').filter({ hasText: 'Me' }).getByTestId('owner-weighted').innerText(), '€7,500.00'));
  await eventually(async () => assert.equal(await page.getByTestId('undated-line').getByTestId('attention-count').innerText(), '1 open deal'));
  await eventually(async () => assert.equal(await page.getByTestId('overdue-line').getByTestId('attention-count').innerText(), '0 open deals'));
  await page.locator('.target-line').first().waitFor();
  await shot(page, 'forecast-desktop');
  await page.getByRole('link', { name: 'Give them a date: No close date' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('deal-row').count(), 1));
  await eventually(async () => assert.match(await page.getByTestId('deal-row').innerText(), /Umbrella expansion/));

  // The list sorts and filters.
  await page.getByLabel('Close date').selectOption('');
  await page.getByLabel('Status').selectOption('');
  await eventually(async () => assert.equal(await page.getByTestId('deal-row').count(), 3));
  await page.getByLabel('Sort by').selectOption('value');
  await page.getByRole('button', { name: /^Ascending\b.*reverse the order$/ }).click();
  await eventually(async () => assert.match(await page.getByTestId('deal-row').first().innerText(), /Initech renewal/));
  await page.getByLabel('Status').selectOption('lost');
  await eventually(async () => assert.equal(await page.getByTestId('deal-row').count(), 1));
  await eventually(async () => assert.match(await page.getByTestId('deal-row').innerText(), /Globex pilot/));

  // After a reload: the stage and the whole history.
  await nav(page, 'Deals').click();
  await card(page, 'Initech renewal').waitFor();
  await page.getByRole('link', { name: 'Initech renewal' }).click();
  await page.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('deal-stage').innerText(), 'Negotiation'));
  await eventually(async () => assert.equal(await page.getByTestId('deal-weighted').innerText(), '€7,500.00'));
  const history = page.getByTestId('stage-history').locator('li');
  await eventually(async () => assert.equal(await history.count(), 4));
  await eventually(async () => assert.match(await history.nth(0).innerText(), /Moved from Proposal to Negotiation[\s\S]*Me/));
  await eventually(async () => assert.match(await history.nth(1).innerText(), /Moved from Qualified to Proposal/));
  await eventually(async () => assert.match(await history.nth(2).innerText(), /Moved from Lead to Qualified/));
  await eventually(async () => assert.match(await history.nth(3).innerText(), /Created in Lead/));
  await page.getByTestId('activity-panel').waitFor();
  await shot(page, 'deal-page-desktop');

  await page.goto(`${env.server.url}/deals?view=list&status=lost`);
  await page.getByRole('link', { name: 'Globex pilot' }).click();
  await page.getByRole('heading', { name: 'Globex pilot' }).waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('deal-reason').innerText(), 'Went with a cheaper vendor'));
  await eventually(async () => assert.match(await page.getByTestId('deal-stage').innerText(), /Lost/));

  // Phone width: the board scrolls column by column, the forecast stacks.
  await page.setViewportSize({ width: 390, height: 844 });
  await nav(page, 'Deals').click();
  await card(page, 'Initech renewal').waitFor();
  await shot(page, 'deals-board-phone');
  // On a phone the forecast is under "More" in the bottom bar.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'More' }).click();
  await nav(page, 'Forecast').click();
  await page.getByTestId('month-row').first().waitFor();
  await shot(page, 'forecast-phone');
  await page.goto(`${env.server.url}/deals?view=list`);
  await page.getByTestId('deal-row').first().waitFor();
  await shot(page, 'deals-list-phone');
  await page.getByRole('link', { name: 'Initech renewal' }).click();
  await page.getByRole('heading', { name: 'Initech renewal' }).waitFor();
  await shot(page, 'deal-page-phone');
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit Initech renewal' }).waitFor();
  await page.getByRole('searchbox', { name: 'Contacts' }).fill('zz-nobody');
  await page.getByText('No contact matches.').waitFor();
  await shot(page, 'deal-form-phone');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('pipeline settings: add, reorder by keyboard, rename and archive stages', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/settings/pipelines`);
  await page.getByRole('heading', { name: 'Pipelines and stages' }).waitFor();
  const sales = page.getByRole('region', { name: 'Pipeline: Sales' });

  // Add a stage: it goes before Won and Lost.
  await sales.getByLabel('New stage name').fill('Demo');
  await sales.getByLabel('Its default probability (%)').fill('40');
  await sales.getByRole('button', { name: 'Add stage' }).click();
  const names = async () => sales.getByTestId('stage-row').evaluateAll((rows) => rows.map((r) => r.querySelector('input').value));
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Proposal', 'Negotiation', 'Demo', 'Won', 'Lost']));

  // Move it up twice with the keyboard; focus stays on the button.
  await sales.getByRole('button', { name: 'Move Demo up' }).focus();
  await page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Proposal', 'Demo', 'Negotiation', 'Won', 'Lost']));
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Move Demo up'));
  await page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Demo', 'Proposal', 'Negotiation', 'Won', 'Lost']));
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
  await eventually(async () => assert.equal(await focused(), 'Move Demo up'));
  await sales.getByRole('button', { name: 'Move Demo down' }).focus();
  await page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Proposal', 'Demo', 'Negotiation', 'Won', 'Lost']));
  await eventually(async () => assert.equal(await focused(), 'Move Demo down'));
  await page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Proposal', 'Negotiation', 'Demo', 'Won', 'Lost']));
  await sales.getByRole('button', { name: 'Move Demo up' }).click();
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Proposal', 'Demo', 'Negotiation', 'Won', 'Lost']));
  await sales.getByRole('button', { name: 'Move Demo up' }).click();
  await eventually(async () => assert.deepEqual(await names(), ['Lead', 'Qualified', 'Demo', 'Proposal', 'Negotiation', 'Won', 'Lost']));

  // Rename a stage and change its default probability.
  await sales.getByLabel('Name of stage Demo').fill('Product demo');
  await sales.getByLabel('Name of stage Demo').press('Tab');
  await sales.getByLabel('Default probability (%) of stage Product demo').fill('150');
  await sales.getByLabel('Default probability (%) of stage Product demo').press('Tab');
  await sales.getByText('Enter a probability from 0 to 100').waitFor();
  await sales.getByLabel('Default probability (%) of stage Product demo').fill('35');
  await sales.getByLabel('Default probability (%) of stage Product demo').press('Tab');
  await eventually(async () => assert.equal(await sales.getByText('Enter a probability from 0 to 100').count(), 0));

  // Archiving every open stage stops at the last one, in words.
  for (const stage of ['Lead', 'Qualified', 'Product demo', 'Proposal']) {
    await sales.getByRole('button', { name: `Archive stage ${stage}` }).click();
    await eventually(async () => assert.equal(await sales.getByRole('button', { name: `Restore stage ${stage}` }).count(), 1));
  }
  await sales.getByRole('button', { name: 'Archive stage Negotiation' }).click();
  await sales.getByText('This is the last open stage').waitFor();
  await sales.getByRole('button', { name: 'Restore stage Lead' }).click();
  await sales.getByRole('button', { name: 'Restore stage Product demo' }).click();
  await shot(page, 'pipeline-settings-desktop');

  // The board follows the settings; a second pipeline gets a switcher.
  await page.getByLabel('New pipeline name').fill('Partnerships');
  await page.getByRole('button', { name: 'Add pipeline' }).click();
  await page.getByRole('region', { name: 'Pipeline: Partnerships' }).waitFor();
  await page.goto(`${env.server.url}/deals/new`);
  await page.getByLabel('Title').fill('Reseller deal');
  await page.getByLabel('Pipeline').selectOption({ label: 'Partnerships' });
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByRole('heading', { name: 'Reseller deal' }).waitFor();
  await nav(page, 'Deals').click();
  await page.getByText('No deals here').first().waitFor();
  const stagesShown = await page.getByTestId('board-column').locator('h2').allInnerTexts();
  assert.deepEqual(stagesShown, ['Lead', 'Product demo', 'Negotiation', 'Won', 'Lost']);
  await page.getByLabel('Pipeline').selectOption({ label: 'Partnerships' });
  await card(page, 'Reseller deal').waitFor();

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${env.server.url}/settings/pipelines`);
  await page.getByRole('region', { name: 'Pipeline: Sales' }).waitFor();
  await shot(page, 'pipeline-settings-phone');
  assert.deepEqual(page.errors, []);
  await context.close();
});
