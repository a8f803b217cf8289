// The forecast keeps currencies apart: each currency's chart and table
// count only that currency's deals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

/** The 15th of next month, as `<input type=date>` takes it. */
function midNextMonth() {
  const now = new Date();
  const next = new Date(now.getFullYear(), now.getMonth() + 1, 15);
  return `${next.getFullYear()}-${String(next.getMonth() + 1).padStart(2, '0')}-15`;
}

async function createDeal(page, title, value, currency, close) {
  await page.goto(`${env.server.url}/deals/new`);
  await page.getByRole('heading', { name: 'New deal' }).waitFor();
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Value').fill(value);
  await page.getByLabel('Currency').fill(currency);
  await page.getByLabel('Expected close date').fill(close);
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByRole('heading', { name: title }).waitFor();
}

test("each currency's forecast counts only its own deals", async () => {
  const page = await newPage(env.browser);
  const close = midNextMonth();
  await createDeal(page, 'Berlin rollout', '10000', 'EUR', close);
  await createDeal(page, 'Paris pilot', '5000', 'EUR', close);
  await createDeal(page, 'Austin expansion', '8000', 'USD', close);

  await page.goto(`${env.server.url}/forecast`);
  await page.getByRole('heading', { name: 'Forecast' }).waitFor();
  const deals = async (currency) => {
    const row = page.locator(`[data-testid="forecast-chart"][data-currency="${currency}"]`).getByTestId('month-row').nth(1);
    return row.locator('td').first().innerText();
  };
  await eventually(async () => assert.equal(await deals('EUR'), '2'));
  await eventually(async () => assert.equal(await deals('USD'), '1', 'the USD table counts the USD deal only'));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
