// Two browsers, one workspace, a real relay: share, join by invite link,
// edit the same contact while cut off, reconnect, converge. Then check that
// the relay's database holds no plaintext.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { dumpIndexedDb, eventually, joinByInvite, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser({ relay: true });

/** How many documents the relay holds envelopes or snapshots for (read with Python's sqlite3). */
function relayDocuments(dataDir) {
  const script = 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); '
    + 'print(c.execute("select count(*) from (select doc_tag from envelopes union select doc_tag from snapshots)").fetchone()[0])';
  return Number(execFileSync('python3', ['-c', script, join(dataDir, 'relay.sqlite3')]).toString().trim());
}

const synced = (page) => eventually(async () => {
  await eventually(async () => assert.equal(await page.getByTestId('sync-status').innerText(), 'Synced'));
}, 15000);

async function statusOf(page, purpose) {
  return page.getByRole('row', { name: new RegExp(purpose) }).getByTestId('consent-status').innerText();
}

async function openContact(page, name) {
  await page.getByRole('link', { name: 'Contacts', exact: true }).click();
  await page.getByRole('listitem').filter({ hasText: name }).click();
  await page.getByRole('heading', { name }).waitFor();
}

async function edit(page, changes) {
  await page.getByRole('link', { name: 'Edit' }).click();
  for (const [label, value] of Object.entries(changes)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('link', { name: 'Edit' }).waitFor();
}

test('two browsers share a workspace through the relay, edit offline and converge', async () => {
  const ctxA = await env.browser.newContext();
  const ctxB = await env.browser.newContext();
  const a = await newPage(ctxA);
  const b = await newPage(ctxB);

  // A names its workspace, shares it and creates a contact.
  await a.goto(`${env.server.url}/settings`);
  await a.getByLabel('Workspace name').fill('Analytical team');
  await a.getByRole('button', { name: 'Save settings' }).click();
  await a.getByText('Settings saved').waitFor();
  await a.getByLabel('Sync server address').fill(env.relay.url);
  await a.getByRole('button', { name: 'Share this workspace' }).click();
  const invite = await a.getByTestId('invite-link').inputValue();
  assert.match(invite, /#join=/);
  await synced(a);
  await a.goto(`${env.server.url}/contacts/new`);
  await a.getByLabel('Given name').fill('Ada');
  await a.getByLabel('Family name').fill('Lovelace');
  await a.getByLabel('Email 1', { exact: true }).fill('ada.lovelace@example.org');
  await a.getByLabel('Phone 1', { exact: true }).fill('+44 20 7946 0958');
  await a.getByRole('button', { name: 'Create contact' }).click();
  await a.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await synced(a);

  // B has a local workspace of its own, then joins with the link and receives everything.
  await b.goto(`${env.server.url}/contacts`);
  await b.getByText('No contacts yet').waitFor();
  // Opening the link asks first, showing what would be joined; declining
  // leaves B in its own workspace and the secret out of the address bar.
  await b.goto(invite);
  const confirm = b.getByTestId('join-confirm');
  await confirm.getByRole('heading', { name: 'Join “Analytical team”?' }).waitFor();
  assert.equal(await confirm.getByTestId('join-relay').innerText(), env.relay.url);
  await shot(b, 'sync-join-confirm');
  await confirm.getByRole('button', { name: 'Join workspace' }).click();
  await confirm.getByText('Enter your name to join').waitFor();
  await eventually(async () => assert.equal(await b.evaluate(() => document.activeElement?.id), 'join-name', 'focus moves to the name'));
  await confirm.getByRole('button', { name: "Don't join" }).click();
  await b.getByText('No contacts yet').waitFor();
  assert.doesNotMatch(b.url(), /join=/);
  await eventually(async () => assert.equal(await b.getByTestId('sync-status').count(), 0, 'nothing was joined'));

  const shown = await joinByInvite(b, invite, 'Bea Byron');
  assert.equal(shown.workspace, 'Analytical team');
  assert.equal(shown.relay, env.relay.url);
  assert.match(shown.text, /can be used until the workspace's key is changed/);
  await b.getByRole('listitem').filter({ hasText: 'Ada Lovelace' }).waitFor({ timeout: 30000 });
  await synced(b);
  await shot(b, 'sync-joined-list');
  // B is a member under the name given when joining, not "New member".
  await eventually(async () => {
    await b.goto(`${env.server.url}/settings`);
    await eventually(async () => assert.equal(await b.getByLabel('Your name').inputValue(), 'Bea Byron'), 3000);
  }, 20000);
  // The sync indicator is a link (native role) inside a status region.
  await b.getByRole('status').getByRole('link', { name: /^Synced/ }).waitFor();
  await openContact(b, 'Ada Lovelace');
  await openContact(a, 'Ada Lovelace');

  // Both are cut off from the relay and edit the same contact.
  await env.relay.stop();
  await ctxA.setOffline(true);
  await ctxB.setOffline(true);
  await eventually(async () => assert.notEqual(await a.getByTestId('sync-status').innerText(), 'Synced'), 15000);
  await edit(a, { 'Company': 'Analytical Engines', 'Job title': 'Countess' });
  await edit(b, { 'Tags': 'vip', 'Job title': 'Mathematician' });
  await a.getByRole('button', { name: 'Grant Marketing email' }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Record consent' }).click();
  await eventually(async () => assert.equal(await statusOf(a, 'Marketing email'), 'Granted'));
  await b.getByRole('button', { name: 'Grant Marketing email' }).click();
  await b.getByRole('dialog').getByRole('button', { name: 'Record consent' }).click();
  await eventually(async () => assert.equal(await statusOf(b, 'Marketing email'), 'Granted'));
  await b.getByRole('button', { name: 'Withdraw Marketing email' }).click();
  await b.getByRole('dialog').getByRole('button', { name: 'Record withdrawal' }).click();
  await eventually(async () => assert.equal(await statusOf(b, 'Marketing email'), 'Withdrawn'));

  // Back online: both converge.
  await env.relay.restart();
  await ctxA.setOffline(false);
  await ctxB.setOffline(false);
  await synced(a);
  await synced(b);
  const details = async (page) => {
    await page.reload();
    await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
    return {
      details: await page.locator('.details dl').innerText(),
      consent: await statusOf(page, 'Marketing email'),
      history: await page.getByTestId('consent-history').locator('li').count(),
    };
  };
  await eventually(async () => {
    const [da, db] = [await details(a), await details(b)];
    assert.deepEqual(da, db, 'both browsers show identical data');
    assert.match(da.details, /Analytical Engines/);
    assert.match(da.details, /vip/);
    assert.match(da.details, /Countess|Mathematician/);
    assert.equal(da.consent, 'Withdrawn', 'a withdrawal is never lost to a concurrent grant');
    assert.equal(da.history, 3);
  }, 20000);
  // The job title was set on both: the conflict is shown with both values.
  const conflicts = a.getByTestId('conflicts');
  await conflicts.waitFor();
  await eventually(async () => assert.match(await conflicts.innerText(), /Countess/));
  await eventually(async () => assert.match(await conflicts.innerText(), /Mathematician/));
  await shot(a, 'sync-conflict');

  // The relay holds ciphertext only.
  const bytes = Buffer.concat(readdirSync(env.relay.dataDir).map((f) => readFileSync(join(env.relay.dataDir, f))));
  assert.ok(bytes.length > 0, 'the relay stored something');
  for (const secret of ['Lovelace', 'ada.lovelace@example.org', '442079460958', 'Analytical Engines', 'Countess', 'Mathematician']) {
    assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `${secret} must not appear in the relay's files`);
  }
  // A erases Ada: B's copy goes when it syncs, and the relay drops her envelopes.
  const docsBefore = relayDocuments(env.relay.dataDir);
  await a.getByRole('button', { name: 'Erase…' }).click();
  await a.getByRole('button', { name: 'Erase permanently' }).click();
  await a.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await eventually(async () => {
    await b.goto(`${env.server.url}/contacts`);
    await b.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
    await eventually(async () => assert.equal(await b.getByRole('listitem').filter({ hasText: 'Ada' }).count(), 0, 'B erased its copy'));
  }, 20000);
  await synced(a);
  await synced(b);
  for (const [who, page] of [['A', a], ['B', b]]) {
    const dump = await dumpIndexedDb(page);
    for (const secret of ['Lovelace', 'ada.lovelace@example.org', '442079460958', 'Countess', 'Mathematician']) {
      assert.ok(!dump.includes(secret), `${secret} must not remain in ${who}'s IndexedDB`);
    }
  }
  await eventually(() => {
    const after = relayDocuments(env.relay.dataDir);
    assert.equal(after, docsBefore - 1, 'the relay dropped every envelope of the erased contact');
  }, 15000);

  // B's own workspace is still on the device, one click away.
  await b.goto(`${env.server.url}/settings`);
  await b.getByRole('button', { name: 'Open workspace My workspace' }).click();
  await b.getByText('No contacts yet').waitFor();
  await eventually(async () => assert.equal(await b.getByTestId('sync-status').count(), 0, 'the local workspace is not shared'));

  assert.deepEqual([...a.errors, ...b.errors].filter((e) => !/WebSocket|ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(String(e))), []);
  await ctxA.close();
  await ctxB.close();
});

/** The relay's snapshots and how many envelopes each one's document still has (Python's sqlite3). */
function relaySnapshots(dataDir) {
  const script = 'import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); '
    + 'print(json.dumps([r[0] for r in c.execute("select (select count(*) from envelopes e where e.doc_tag = s.doc_tag) from snapshots s")]))';
  return JSON.parse(execFileSync('python3', ['-c', script, join(dataDir, 'relay.sqlite3')]).toString());
}

test('anonymising in a shared workspace replaces the contact on every browser and on the relay; an offline edit of the old details does not bring them back', async () => {
  const DAY = 86_400_000;
  const realNow = Date.now();
  const ctxA = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ctxB = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  // A made the contact three years ago (the app takes every time from the
  // page's clock), so a retention policy puts it up for review today.
  await ctxA.clock.install({ time: realNow - 3 * 365 * DAY });
  const a = await newPage(ctxA);
  const b = await newPage(ctxB);
  await a.goto(`${env.server.url}/contacts/new`);
  await a.getByLabel('Given name').fill('Olga');
  await a.getByLabel('Family name').fill('Oldname');
  await a.getByLabel('Email 1', { exact: true }).fill('olga.oldname@example.org');
  await a.getByLabel('Phone 1', { exact: true }).fill('+44 20 7946 0412');
  await a.getByRole('button', { name: 'Create contact' }).click();
  await a.getByRole('heading', { name: 'Olga Oldname' }).waitFor();
  await a.clock.setSystemTime(realNow);

  // A shares the workspace; B joins and receives Olga.
  await a.goto(`${env.server.url}/settings`);
  await a.getByLabel('Sync server address').fill(env.relay.url);
  await a.getByRole('button', { name: 'Share this workspace' }).click();
  const invite = await a.getByTestId('invite-link').inputValue();
  await synced(a);
  await b.goto(`${env.server.url}/contacts`);
  await b.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  await joinByInvite(b, invite, 'Bob Baker');
  await b.getByRole('listitem').filter({ hasText: 'Olga Oldname' }).waitFor({ timeout: 30000 });
  await synced(b);

  // Both lose the relay; B edits Olga offline while A anonymises her.
  await openContact(b, 'Olga Oldname');
  await env.relay.stop();
  await ctxA.setOffline(true);
  await ctxB.setOffline(true);
  await eventually(async () => assert.notEqual(await b.getByTestId('sync-status').innerText(), 'Synced'), 15000);
  await edit(b, { 'Job title': 'Offline secret title' });

  await a.getByRole('link', { name: 'Settings', exact: true }).click();
  const policy = a.getByTestId('retention-settings');
  await policy.getByLabel('Review contacts inactive for (months)').fill('12');
  await policy.getByRole('button', { name: 'Save policy' }).click();
  await policy.getByTestId('retention-current').getByText(/12 months/).waitFor();
  await a.getByRole('link', { name: 'Privacy', exact: true }).click();
  await a.getByRole('heading', { name: 'Retention review' }).waitFor();
  await eventually(async () => assert.ok(await a.getByRole('checkbox', { name: 'Olga Oldname' }).isChecked()));
  await a.getByRole('button', { name: 'Anonymise selected (1)…' }).click();
  await a.getByRole('dialog').getByRole('button', { name: 'Anonymise 1 contact' }).click();
  await a.getByTestId('retention-done').getByText('Anonymised 1 contact.').waitFor();
  // A comes back first and sends the new version; B is still offline.
  await env.relay.restart();
  await ctxA.setOffline(false);
  await synced(a);
  // The relay replaced every envelope of her old history with one snapshot.
  await eventually(() => assert.deepEqual(relaySnapshots(env.relay.dataDir), [0]), 15000);

  // B comes back: it adopts the new version and drops its offline edit.
  await ctxB.setOffline(false);
  await synced(b);
  await eventually(async () => {
    await b.goto(`${env.server.url}/contacts`);
    await b.getByRole('listitem').filter({ hasText: 'Anonymised contact' }).waitFor({ timeout: 2000 });
    assert.equal(await b.getByRole('listitem').filter({ hasText: 'Olga' }).count(), 0);
  }, 20000);
  await synced(b);
  await shot(b, 'sync-anonymised');
  for (const [who, page] of [['A', a], ['B', b]]) {
    const dump = await dumpIndexedDb(page);
    for (const secret of ['Olga', 'Oldname', 'olga.oldname@example.org', '442079460412', 'Offline secret title']) {
      assert.ok(!dump.includes(secret), `${secret} must not remain in ${who}'s IndexedDB`);
    }
    assert.ok(dump.includes('Anonymised contact'), `${who} keeps the anonymised contact`);
  }
  assert.deepEqual(relaySnapshots(env.relay.dataDir), [0], 'B pushed nothing of the old version');

  assert.deepEqual([...a.errors, ...b.errors].filter((e) => !/WebSocket|ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(String(e))), []);
  await ctxA.close();
  await ctxB.close();
});
