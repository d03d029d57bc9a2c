// The tourist app's service worker (scope /app/). On install it caches the page, its settings and the hashed
// assets the page names, so the app opens with no connection. Hashed assets are served from the cache;
// the page and public data (warnings, places, sensors, WiFi) go to the network first, fall back to the last
// answer when the network fails or is slower than a few seconds (slow connections), and refresh the cache.
const CACHE = 'citydata-app-v1'
const SHELL = ['/app/', '/app/config.js', '/app/manifest.webmanifest', '/app/icon.svg', '/app/icon-192.png']
const DATA = [/^\/api\/v1\/places/, /^\/api\/v1\/sensors\/latest/, /^\/api\/v1\/wifi\//, /^\/cap\//]
const SLOW_MS = 4000

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    await cache.addAll(SHELL)
    const page = await (await cache.match('/app/')).text()
    const assets = [...page.matchAll(/(?:src|href)="(\/static\/assets\/[^"]+)"/g)].map((m) => m[1])
    await cache.addAll(assets)
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key)
    await self.clients.claim()
  })())
})

async function cacheFirst (request) {
  const hit = await caches.match(request)
  if (hit) return hit
  const res = await fetch(request)
  if (res.ok) (await caches.open(CACHE)).put(request, res.clone())
  return res
}

async function networkFirst (request) {
  const cache = await caches.open(CACHE)
  const network = fetch(request).then((res) => {
    if (res.ok) cache.put(request, res.clone())
    return res
  })
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), SLOW_MS))
  try {
    const first = await Promise.race([network, timeout])
    if (first) return first
    const cached = await cache.match(request)
    return cached || await network
  } catch (err) {
    const cached = await cache.match(request)
    if (cached) return cached
    throw err
  }
}

self.addEventListener('fetch', (event) => {
  const req = event.request
  if (req.method !== 'GET') return
  const url = new URL(req.url)
  if (url.origin !== self.location.origin) return
  if (url.pathname.startsWith('/static/assets/')) { event.respondWith(cacheFirst(req)); return }
  if (req.mode === 'navigate' && url.pathname.startsWith('/app')) {
    event.respondWith(networkFirst(new Request('/app/')))
    return
  }
  if (SHELL.includes(url.pathname) || DATA.some((re) => re.test(url.pathname))) event.respondWith(networkFirst(req))
})
