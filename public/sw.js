// Rapport's service worker: the app shell offline.
//
// This is the source. The build (scripts/pwa-build.mjs, a trunk post_build
// hook) writes it to the root of dist/ as sw.js, preceded by one line that
// sets `self.__RAPPORT_BUILD__ = { version, files, boot }`: the cache
// version (a hash of every output file) and the list of files to keep, as
// paths relative to the app's root. A deploy changes that line, so the
// browser sees a new sw.js and installs it next to the running one.
//
// Life cycle:
// - install: download every file of this build into a new cache (bypassing
//   the HTTP cache). Any failure, or an index.html that is not from this
//   build (a half-finished deploy, a stale CDN copy), fails the install; the
//   browser tries again on its next update check and the running version
//   keeps working.
// - waiting: a new version never takes over an open page by itself. The app
//   sees it waiting, offers "Reload", and posts {type: 'SKIP_WAITING'} when
//   the user agrees (src/pwa.rs). Closing every tab also lets it take over.
// - activate: delete this app's older caches and take control of open pages.
// - fetch: files of this build come from the cache; page navigations inside
//   the app's scope get the cached index.html (the router does the rest);
//   everything else (other origins, the relay's WebSocket) is not touched.
//
// Data is not here: records live in IndexedDB and never pass through this
// worker.

const BUILD = self.__RAPPORT_BUILD__;
if (!BUILD) throw new Error('sw.js was served without its build manifest: deploy dist/sw.js, not public/sw.js');

const SCOPE = self.registration.scope; // the app's root, ends with '/'
// Caches are per origin, not per scope: two deployments on one origin
// (/crm/ and /crm-staging/) must not delete each other's caches.
const CACHE_PREFIX = `rapport:${new URL(SCOPE).pathname}:`;
const CACHE = CACHE_PREFIX + BUILD.version;
const INDEX = new URL('index.html', SCOPE).href;
const PRECACHED = new Set(BUILD.files.map((f) => new URL(f, SCOPE).href));

self.addEventListener('install', (event) => {
  event.waitUntil(precache());
});

async function precache() {
  const cache = await caches.open(CACHE);
  try {
    await Promise.all(BUILD.files.map(async (file) => {
      const url = new URL(file, SCOPE).href;
      let response = await fetch(url, { cache: 'reload' });
      if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
      if (url === INDEX) {
        const html = await response.clone().text();
        if (!html.includes(BUILD.boot)) throw new Error(`index.html is not from build ${BUILD.version}`);
      }
      // A response that followed a redirect cannot answer a navigation.
      if (response.redirected) {
        response = new Response(await response.blob(), { status: response.status, headers: response.headers });
      }
      await cache.put(url, response);
    }));
  } catch (error) {
    await caches.delete(CACHE);
    throw error;
  }
}

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.href.startsWith(SCOPE)) return;
  const key = url.origin + url.pathname;
  if (PRECACHED.has(key)) {
    event.respondWith(fromCache(key, request));
  } else if (request.mode === 'navigate' && isAppRoute(url)) {
    event.respondWith(fromCache(INDEX, request));
  }
});

/** A path the app's router handles: no file extension in its last segment. */
function isAppRoute(url) {
  const last = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  return !last.includes('.');
}

async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(key)) ?? fetch(request);
}
