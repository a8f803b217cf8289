// Every page at phone and desktop width, with data on every page: nothing
// is wider than the viewport, the phone navigation reaches every section by
// thumb and keyboard, focus lands on the new page after each route change,
// accessible names start with the visible text, and axe-core finds nothing
// serious or critical. Screenshots of every page at 360 and 390 px go to
// artifacts/screenshots/phone-*.png.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();
const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const PHONE_WIDTHS = [360, 390];
const DESKTOP = { width: 1280, height: 800 };

/** A company, a contact at it with a phone number, a deal and a task due today. */
async function seed(page) {
  const url = env.server.url;
  await page.goto(`${url}/companies/new`);
  await page.getByLabel('Company name').fill('Globex Corporation International');
  await page.getByRole('button', { name: 'Create company' }).click();
  await page.getByRole('heading', { name: 'Globex Corporation International' }).waitFor();
  const company = page.url().split('/').pop();

  await page.goto(`${url}/contacts/new`);
  await page.getByLabel('Given name').fill('Ada');
  await page.getByLabel('Family name').fill('Lovelace-Byron');
  await page.getByLabel('Company', { exact: true }).fill('Globex Corporation International');
  await page.getByLabel('Email 1', { exact: true }).fill('ada.lovelace-byron@analytical-engines.example.org');
  await page.getByLabel('Phone 1', { exact: true }).fill('+44 20 7946 0958');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace-Byron' }).waitFor();
  const contact = page.url().split('/').pop();

  // A follow-up due today: the Tasks link then carries its count.
  const followUps = page.getByRole('region', { name: 'Follow-ups' });
  await followUps.getByLabel('Follow-up', { exact: true }).fill('Send the proposal for the analytical engine');
  await followUps.getByRole('button', { name: 'Add follow-up' }).click();
  await followUps.getByRole('checkbox', { name: 'Send the proposal for the analytical engine' }).waitFor();
  await page.locator('[data-testid="task-count"]:visible').waitFor();

  await page.goto(`${url}/deals/new`);
  await page.getByLabel('Title').fill('Globex analytical engine rollout');
  await page.getByLabel('Value').fill('125,000');
  await page.getByRole('button', { name: 'Create deal' }).click();
  await page.getByRole('heading', { name: 'Globex analytical engine rollout' }).waitFor();
  const deal = page.url().split('/').pop();
  return { company, contact, deal };
}

/** Every route of the app, with a name for its screenshot. */
function pages({ company, contact, deal }) {
  return [
    ['contacts', '/contacts'],
    ['contact-new', '/contacts/new'],
    ['contact', `/contacts/${contact}`],
    ['contact-edit', `/contacts/${contact}/edit`],
    ['companies', '/companies'],
    ['company-new', '/companies/new'],
    ['company', `/companies/${company}`],
    ['company-edit', `/companies/${company}/edit`],
    ['deals-board', '/deals'],
    ['deals-list', '/deals?view=list'],
    ['deal-new', '/deals/new'],
    ['deal', `/deals/${deal}`],
    ['deal-edit', `/deals/${deal}/edit`],
    ['forecast', '/forecast'],
    ['tasks', '/tasks'],
    ['task-new', '/tasks/new'],
    ['calendar', '/calendar'],
    ['privacy-retention', '/privacy/retention'],
    ['privacy-audit', '/privacy/audit'],
    ['settings', '/settings'],
    ['pipelines', '/settings/pipelines'],
  ];
}

/** How far the page reaches past the viewport's right edge, in px (0 when it fits). */
async function overflow(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    const widest = Math.max(doc.scrollWidth, document.body.scrollWidth);
    return Math.max(0, widest - window.innerWidth);
  });
}

/** Serious and critical axe-core findings on the page as it is now. */
async function axeFindings(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ path: AXE });
  const results = await page.evaluate(() => window.axe.run(document, {
    resultTypes: ['violations'],
    // Experimental in axe, and the point of this check: the name contains the label.
    rules: { 'label-content-name-mismatch': { enabled: true } },
  }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join('\n    ')}`);
}

/**
 * Links and buttons whose accessible name does not start with their visible
 * text (letters and digits compared; icon-only controls are skipped).
 */
async function nameMismatches(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ path: AXE });
  return page.evaluate(() => {
    // Letters and digits only: axe joins the text of adjacent elements
    // without the space a browser's name would have between blocks.
    const words = (s) => (s.match(/[\p{L}\p{N}]+/gu) ?? []).join('').toLowerCase();
    // The text a sighted user sees: rendered text nodes, less decoration
    // hidden from assistive technology and text only screen readers get.
    const visibleText = (el) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      let text = '';
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent.checkVisibility() || parent.closest('[aria-hidden="true"], .visually-hidden')) continue;
        text += ` ${node.textContent}`;
      }
      return text;
    };
    window.axe.setup(document);
    const out = [];
    try {
      for (const el of document.querySelectorAll('a[href], button, summary, [role="button"], [role="link"]')) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
        const shown = words(visibleText(el));
        if (!shown) continue;
        const name = words(window.axe.commons.text.accessibleText(el));
        if (!name.startsWith(shown)) out.push(`${el.tagName.toLowerCase()} shows "${el.innerText.trim()}" but is named "${window.axe.commons.text.accessibleText(el)}"`);
      }
    } finally {
      window.axe.teardown();
    }
    return out;
  });
}

/** Links that were given another role (rows given role="listitem", a link given role="status"). */
async function linksWithOtherRoles(page) {
  return page.evaluate(() => [...document.querySelectorAll('a[href][role]')].map((a) => `${a.getAttribute('role')}: ${a.textContent.trim()}`));
}

async function waitForPage(page) {
  await page.locator('#main h1').first().waitFor();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

test('every page fits phone widths, and at phone and desktop width has names that match what is shown and no serious axe finding', async () => {
  // bypassCSP: the app's CSP rightly refuses the injected axe-core script.
  const context = await env.browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
  const page = await newPage(context);
  const ids = await seed(page);
  const problems = [];
  for (const [name, path] of pages(ids)) {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${env.server.url}${path}`);
    await waitForPage(page);
    for (const width of PHONE_WIDTHS) {
      await page.setViewportSize({ width, height: 844 });
      const wide = await eventually(async () => {
        const px = await overflow(page);
        assert.equal(px, 0);
        return px;
      }, 1500).catch(async () => overflow(page));
      if (wide > 0) problems.push(`${path} at ${width} px is ${wide} px wider than the viewport`);
      await shot(page, `phone-${name}-${width}`);
    }
    for (const viewport of [{ width: 390, height: 844 }, DESKTOP]) {
      await page.setViewportSize(viewport);
      const at = `${path} at ${viewport.width} px`;
      for (const finding of await axeFindings(page)) problems.push(`${at}: ${finding}`);
      for (const m of await nameMismatches(page)) problems.push(`${at}: ${m}`);
      for (const l of await linksWithOtherRoles(page)) problems.push(`${at}: a link with role ${l}`);
    }
  }
  assert.deepEqual(problems, []);
  // The home link is named by what it shows.
  await page.getByRole('link', { name: 'Rapport', exact: true }).waitFor();
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('on a phone the navigation shows every section within reach, by touch and by keyboard', async () => {
  const context = await env.browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts`);
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  const nav = page.getByRole('navigation', { name: 'Main' });
  const inViewport = async (locator) => {
    const box = await locator.boundingBox();
    assert.ok(box, 'shown');
    assert.ok(box.x >= 0 && box.x + box.width <= 360 && box.y >= 0 && box.y + box.height <= 740, `inside the screen: ${JSON.stringify(box)}`);
    assert.ok(box.height >= 44, `tall enough for a thumb: ${box.height}px`);
  };
  for (const section of ['Contacts', 'Companies', 'Deals', 'Tasks']) await inViewport(nav.getByRole('link', { name: section, exact: true }));
  const more = nav.getByRole('button', { name: 'More' });
  await inViewport(more);
  assert.equal(await more.getAttribute('aria-expanded'), 'false');
  await shot(page, 'phone-nav-360');

  // By touch: More opens the other sections; choosing one goes there and closes the list.
  await more.tap();
  for (const section of ['Forecast', 'Calendar', 'Privacy', 'Settings']) await inViewport(nav.getByRole('link', { name: section, exact: true }));
  await shot(page, 'phone-nav-more-360');
  await nav.getByRole('link', { name: 'Calendar', exact: true }).tap();
  await page.getByRole('heading', { name: 'Calendar', exact: true }).waitFor();
  await eventually(async () => assert.equal(await more.getAttribute('aria-expanded'), 'false'));

  // By keyboard: Enter opens, Tab goes into the list, Escape closes and returns to More.
  await more.focus();
  await page.keyboard.press('Enter');
  await eventually(async () => assert.equal(await more.getAttribute('aria-expanded'), 'true'));
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Forecast');
  await page.keyboard.press('Escape');
  await eventually(async () => assert.equal(await more.getAttribute('aria-expanded'), 'false'));
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'More');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Settings');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Settings', exact: true }).waitFor();
  // The top bar shows no section links on a phone: nothing hides off-screen.
  assert.equal(await page.locator('.mainnav').isVisible(), false);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('focus moves to the new page after every route change: the first field of a form, else the heading', async () => {
  const context = await env.browser.newContext({ viewport: DESKTOP });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/contacts`);
  await page.getByRole('heading', { name: 'Contacts', exact: true }).waitFor();
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el?.tagName.toLowerCase(), id: el?.id, text: el?.textContent.trim() };
  });

  // "New contact" from the keyboard lands in the first field.
  await page.getByRole('link', { name: 'New contact' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'New contact' }).waitFor();
  await eventually(async () => assert.deepEqual(await focused(), { tag: 'input', id: 'given_name', text: '' }));
  await page.keyboard.type('Grace');
  await page.getByLabel('Family name').fill('Hopper');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await eventually(async () => assert.deepEqual(await focused(), { tag: 'h1', id: '', text: 'Grace Hopper' }));

  // Other pages: the heading.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Companies' }).focus();
  await page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await focused(), { tag: 'h1', id: '', text: 'Companies' }));
  await page.goBack();
  await eventually(async () => assert.deepEqual(await focused(), { tag: 'h1', id: '', text: 'Grace Hopper' }));
  await page.getByRole('link', { name: 'Edit' }).click();
  await eventually(async () => assert.equal((await focused()).id, 'given_name'));
  // The next Tab goes on from there, not from the top of the document.
  await page.keyboard.press('Tab');
  assert.equal((await focused()).id, 'family_name');

  // On a phone too.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deals', exact: true }).click();
  await eventually(async () => assert.deepEqual(await focused(), { tag: 'h1', id: '', text: 'Deals' }));
  assert.deepEqual(page.errors, []);
  await context.close();
});
