// Sync promises around tabs and the network, with a real relay that keeps
// running: a tab opened before the workspace was shared still sends its
// edits, and the indicator follows the browser going offline and back at
// once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, joinByInvite, newPage, shot, useAppAndBrowser } from './harness.mjs';

const OFFLINE = 'Offline: changes are saved on this device';

const env = useAppAndBrowser({ relay: true });

const status = (page) => page.getByTestId('sync-status').innerText();

const synced = (page, timeout = 20000) => eventually(async () => assert.equal(await status(page), 'Synced'), timeout);

async function share(page) {
  await page.goto(`${env.server.url}/settings`);
  await page.getByLabel('Sync server address').fill(env.relay.url);
  await page.getByRole('button', { name: 'Share this workspace' }).click();
  const invite = await page.getByTestId('invite-link').inputValue();
  assert.match(invite, /#join=/);
  return invite;
}

/** Creates a contact by moving around the app, without reloading the tab
 * (a reload would start it afresh, with what it knows now). */
async function createContact(page, given, family) {
  await page.getByRole('link', { name: 'Contacts', exact: true }).click();
  await page.getByRole('link', { name: /first contact|New contact/ }).first().click();
  await page.getByRole('heading', { name: 'New contact' }).waitFor();
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
}

const listed = (page, name) => page.getByRole('listitem').filter({ hasText: name });

test('a tab opened before the workspace was shared sends its edits, and says Synced only once they are sent', async () => {
  const ctxA = await env.browser.newContext();
  const first = await newPage(ctxA);
  const second = await newPage(ctxA);
  await first.goto(`${env.server.url}/contacts`);
  await second.goto(`${env.server.url}/contacts`);
  await second.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();

  // The first tab shares; the second was open all along.
  const invite = await share(first);
  // The second tab learns the workspace is shared without reloading.
  await eventually(async () => assert.notEqual(await second.getByTestId('sync-status').count(), 0));
  await synced(first);
  const ctxB = await env.browser.newContext();
  const other = await newPage(ctxB);
  await joinByInvite(other, invite, 'Bea Byron');
  await synced(other, 30000);

  // An edit made in the second tab reaches the other browser.
  await createContact(second, 'Tab', 'Two');
  await eventually(async () => assert.equal(await listed(other, 'Tab Two').count(), 1), 30000);
  await synced(second);
  // And the second tab can hold the connection itself once the first closes.
  await first.close();
  await createContact(second, 'After', 'Handover');
  await eventually(async () => assert.equal(await listed(other, 'After Handover').count(), 1), 30000);
  await synced(second);
  assert.deepEqual([...second.errors, ...other.errors], []);
  await ctxA.close();
  await ctxB.close();
});

test('going offline says so at once, edits wait on this device, and coming back reconnects at once', async () => {
  const context = await env.browser.newContext();
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts`);
  await share(page);
  await synced(page);

  // The relay keeps running; only this browser loses its network.
  await context.setOffline(true);
  await eventually(async () => assert.equal(await status(page), OFFLINE), 2000);
  await createContact(page, 'Offline', 'Edit');
  await page.waitForTimeout(1500);
  assert.equal(await status(page), OFFLINE, 'an edit made offline does not pretend to sync');
  await shot(page, 'sync-offline');

  await context.setOffline(false);
  await synced(page, 5000);
  // The edit made offline reached the relay: a browser that joins gets it.
  await page.goto(`${env.server.url}/settings`);
  const invite = await page.getByTestId('invite-link').inputValue();
  const joiner = await env.browser.newContext();
  const other = await newPage(joiner);
  await joinByInvite(other, invite, 'Cai Carter');
  await eventually(async () => assert.equal(await listed(other, 'Offline Edit').count(), 1), 30000);
  assert.deepEqual([...page.errors, ...other.errors], []);
  await context.close();
  await joiner.close();
});
