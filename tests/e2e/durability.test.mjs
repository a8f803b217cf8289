// A tab closed in the middle of a burst of edits: every edit the app showed
// as saved ("Created …" once the record is in IndexedDB) is there after
// reopening. The same browser context keeps the origin's IndexedDB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();
const BURST = 10;

test('closing the tab mid-burst loses no contact the app showed as created', async () => {
  const context = await env.browser.newContext();
  // Every "Created <name>" the page announces, recorded as it appears (also
  // for the creations the test does not wait for).
  const acknowledged = new Set();
  await context.exposeBinding('rapportAck', (_source, name) => acknowledged.add(name));
  await context.addInitScript(() => {
    const seen = new Set();
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[role="status"]')) {
        for (const m of el.textContent.matchAll(/Created (Burst \d+ Tester)/g)) {
          if (!seen.has(m[1])) {
            seen.add(m[1]);
            window.rapportAck(m[1]);
          }
        }
      }
    }).observe(document, { childList: true, subtree: true, characterData: true });
  });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts`);

  for (let i = 0; i < BURST; i++) {
    await page.getByRole('link', { name: /New contact|Add your first contact/ }).first().click();
    await page.getByLabel('Given name').fill('Burst');
    await page.getByLabel('Family name').fill(`${i} Tester`);
    await page.getByRole('button', { name: 'Create contact' }).click();
    if (i < BURST / 2) {
      // The first half waits for each save; the rest goes as fast as the UI allows.
      await page.getByRole('heading', { name: `Burst ${i} Tester` }).waitFor();
    }
    await page.goto(`${env.server.url}/contacts`, { waitUntil: 'commit' }).catch(() => {});
  }
  // The last creation is in flight: close the tab without waiting.
  await page.getByRole('link', { name: /New contact|Add your first contact/ }).first().click();
  await page.getByLabel('Given name').fill('Burst');
  await page.getByLabel('Family name').fill(`${BURST} Tester`);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.close();
  const shown = [...acknowledged];
  console.log(`acknowledged before the close: ${shown.length} of ${BURST + 1} (${shown.join(", ")})`);
  assert.ok(shown.length >= BURST / 2, `the app acknowledged only ${shown.length} creations: ${shown}`);

  const reopened = await newPage(context);
  await reopened.goto(`${env.server.url}/contacts`);
  for (const name of shown) {
    await eventually(async () =>
      assert.equal(await reopened.getByRole('listitem').filter({ hasText: name }).count(), 1, `${name} after reopening`),
    );
  }
  assert.deepEqual(reopened.errors, []);
  await context.close();
});
