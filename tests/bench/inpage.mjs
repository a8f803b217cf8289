// Measurements that run inside the app's page (page.evaluate). Each one
// drives the UI the way a user does (an input event per keystroke, a scroll,
// a form submit) and times, with performance.now(), from the event to the
// moment the app's work for it is done: every microtask the event caused has
// run (Leptos applies signal changes and DOM updates in microtasks), then a
// forced style and layout. Painting is not included; a frame is left between
// two samples, as between a person's keystrokes.

// Functions here are sent to the page as source text: they may use only
// their arguments and what the init script (lib.mjs) put in the page.

/** Types each query one character at a time, then deletes one and clears the field. */
export async function typeQueries(queries) {
  const { afterTasks, nextFrame, layout, count } = window.__bench.helpers();
  const input = document.querySelector('[data-testid=contact-search]');
  if (!input) throw new Error('no search field');
  const samples = [];
  const set = async (value, kind) => {
    const t0 = performance.now();
    input.value = value;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    await afterTasks();
    layout();
    samples.push({ value, kind, ms: performance.now() - t0, count: count() });
    await nextFrame();
  };
  for (const q of queries) {
    for (let i = 1; i <= q.length; i += 1) await set(q.slice(0, i), 'type');
    await set(q.slice(0, -1), 'delete');
    await set('', 'clear');
  }
  return samples;
}

/** Jumps to `n` pseudo-random positions of the list, then scrolls `n` times by three rows. */
export async function scrollList(n) {
  const { afterTasks, nextFrame, layout } = window.__bench.helpers();
  const list = document.querySelector('[data-testid=contact-list]');
  if (!list) throw new Error('no contact list');
  let seed = 12345;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const samples = [];
  const scrollTo = async (y, kind) => {
    const t0 = performance.now();
    list.scrollTop = y;
    list.dispatchEvent(new Event('scroll'));
    await afterTasks();
    layout();
    const ms = performance.now() - t0;
    const first = list.querySelector('[data-testid=contact-row]');
    const rows = list.querySelectorAll('[data-testid=contact-row]').length;
    samples.push({ y: list.scrollTop, kind, ms, rows, firstPos: Number(first?.getAttribute('data-pos') ?? -1) });
    await nextFrame();
  };
  const max = list.scrollHeight - list.clientHeight;
  for (let i = 0; i < n; i += 1) await scrollTo(Math.floor(random() * max), 'jump');
  list.scrollTop = 0;
  for (let i = 0; i < n; i += 1) await scrollTo(Math.min(max, (i + 1) * 3 * 56), 'step');
  return { samples, scrollHeight: list.scrollHeight, clientHeight: list.clientHeight };
}

/**
 * Opens a contact's edit form (client-side navigation, as a link would),
 * changes the job title, submits, and returns the time from the submit (the
 * Enter key) to the app's `rapport:save-durable` mark, set once the
 * IndexedDB transaction holding the change has committed. The wall-clock
 * time of the submit is left in `window.__bench.lastSubmit` (sync.mjs).
 */
export async function editContact({ id, title }) {
  const { afterTasks } = window.__bench.helpers();
  const waitFor = async (what, fn, ms = 20000) => {
    const until = performance.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((ok) => setTimeout(ok, 5));
    }
  };
  history.pushState(null, '', `/contacts/${id}/edit`);
  dispatchEvent(new PopStateEvent('popstate', { state: null }));
  const form = await waitFor('the edit form', () => {
    const f = document.querySelector('[data-testid=contact-form]');
    const name = f?.querySelector('#given_name')?.value || f?.querySelector('#family_name')?.value;
    return name ? f : null;
  });
  const input = form.querySelector('#title');
  input.value = title;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  await afterTasks();
  const saved = new Promise((ok) => window.__bench.waiters.push(ok));
  const t0 = performance.now();
  window.__bench.lastSubmit = Date.now();
  form.requestSubmit();
  const timeout = new Promise((_, fail) => setTimeout(() => {
    const errors = [...document.querySelectorAll('[data-testid=field-error]')].map((e) => e.textContent);
    fail(new Error(`no durable save within 10 s${errors.length ? `; form errors: ${errors.join('; ')}` : ''}`));
  }, 10000));
  const at = await Promise.race([saved, timeout]);
  // The app then shows the contact: wait for it so the next edit starts clean.
  await waitFor('the contact page', () => location.pathname === `/contacts/${id}`);
  return at - t0;
}

/** Times and counts read in the page after a load. */
export function startTimes() {
  const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
  const nav = performance.getEntriesByType('navigation')[0];
  const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
  return {
    responseEnd: nav?.responseEnd ?? null,
    wasmFetched: wasm?.responseEnd ?? null,
    wasmStarted: mark('bench:wasm-started'),
    indexStart: mark('rapport:index-start'),
    indexBuilt: mark('rapport:index-built'),
    listRendered: mark('rapport:list-rendered'),
    painted: window.__bench.painted.list ?? null,
    rows: document.querySelectorAll('[data-testid=contact-row]').length,
    count: document.querySelector('[data-testid=contact-count]')?.textContent ?? '',
  };
}

export function wasmMemory() {
  return window.__bench.wasm?.memory?.buffer?.byteLength ?? null;
}

/** Resolves with Date.now() once the page shows `text` (checked on every DOM change). */
export function waitForText(text) {
  return new Promise((ok) => {
    const shown = () => document.body.innerText.includes(text);
    if (shown()) { ok(Date.now()); return; }
    const observer = new MutationObserver(() => {
      if (shown()) { observer.disconnect(); ok(Date.now()); }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}
