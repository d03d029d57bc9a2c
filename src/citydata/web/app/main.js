// The tourist app: public, mobile-first, Thai / English / Chinese. Everything comes from public platform APIs;
// the service worker keeps the last answers for slow or no connection, and reports made offline wait in an
// outbox (IndexedDB) until the connection is back.
import './app.css'
import { api, optional, showErrors, clearErrors, el, haversineM, NetworkError, ApiError } from '../shared/api.js'
import { initLang, setLang, applyI18n, onLang, t, lang, fmtTime } from '../shared/i18n.js'
import { outbox } from './queue.js'

const CATEGORIES = ['safety', 'crime', 'scam', 'medical', 'lost', 'environment', 'flooding', 'road', 'noise', 'other']
const TOWN = { lat: 7.8804, lon: 98.3923 }           // Phuket Town, when the browser gives no location
const DO_POOR = 4.0                                  // mg/L: below this, water quality is poor for bathing
const $ = (s) => document.querySelector(s)
const state = { here: null, located: false, warnings: [], wifi: null, places: null, sensors: null }
window.citydataApp = state

function distance (lat, lon) {
  const h = state.here || TOWN
  return haversineM(h.lat, h.lon, lat, lon)
}

function fmtDistance (m) {
  return m < 1000 ? `${Math.round(m / 10) * 10} m` : `${(m / 1000).toFixed(1)} km`
}

function mapLink (lat, lon) {
  return el('a', { href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`, rel: 'noopener', target: '_blank' }, t('app.directions'))
}

function locate () {
  $('#where').textContent = t('app.locating')
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null)
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 8000, maximumAge: 60000 })
  }).then((here) => {
    state.here = here
    state.located = !!here
    $('#where').textContent = here ? `📍 ${here.lat.toFixed(4)}, ${here.lon.toFixed(4)}` : t('app.no_location')
    return here
  })
}

// -- warnings (the public CAP feed and its CAP 1.2 documents) -------------------------------------------------
async function loadWarnings () {
  const list = $('#warnings')
  try {
    const atom = new DOMParser().parseFromString(await api('/cap/feed.xml', { text: true }), 'application/xml')
    const links = [...atom.getElementsByTagName('entry')].map((e) => e.querySelector('link[rel="alternate"]')?.getAttribute('href')).filter(Boolean)
    const docs = await Promise.all(links.slice(0, 10).map((href) => api(new URL(href, location.href).pathname, { text: true }).catch(() => null)))
    state.warnings = docs.filter(Boolean).map((xml) => new DOMParser().parseFromString(xml, 'application/xml'))
      .filter((doc) => doc.getElementsByTagName('msgType')[0]?.textContent !== 'Cancel')
    renderWarnings()
  } catch (err) {
    list.replaceChildren(el('li', { class: 'empty', text: err instanceof NetworkError ? t('offline') : err.message }))
  }
}

function renderWarnings () {
  const list = $('#warnings')
  if (!state.warnings.length) { list.replaceChildren(el('li', { class: 'empty ok', text: t('app.no_warnings') })); return }
  const want = lang() === 'th' ? 'th' : 'en'
  list.replaceChildren(...state.warnings.map((doc) => {
    const infos = [...doc.getElementsByTagName('info')]
    const info = infos.find((i) => (i.getElementsByTagName('language')[0]?.textContent || '').startsWith(want)) || infos[0]
    const get = (tag) => info?.getElementsByTagName(tag)[0]?.textContent || ''
    return el('li', { class: `warning sev-${get('severity').toLowerCase()}` },
      el('strong', {}, get('headline') || get('event')),
      el('p', {}, get('description')),
      get('instruction') ? el('p', { class: 'instr' }, get('instruction')) : null,
      el('p', { class: 'meta' }, `${get('areaDesc')} · ${get('severity')}${get('expires') ? ` · → ${fmtTime(get('expires'))}` : ''}`))
  }))
}

// -- nearest WiFi, hospital and police --------------------------------------------------------------------
async function loadWifi () {
  const h = state.here || TOWN
  const data = await optional(`/api/v1/wifi/public/hotspots?lat=${h.lat.toFixed(5)}&lon=${h.lon.toFixed(5)}&limit=5`)
  state.wifi = data ? (data.features || []) : []
  renderWifi()
}

function renderWifi () {
  const list = $('#wifi')
  const spots = (state.wifi || []).map((f) => {
    const [lon, lat] = f.geometry ? f.geometry.coordinates : [f.lon, f.lat]
    const p = f.properties || f
    return { name: p.name || p.id, lat, lon, d: distance(lat, lon) }
  }).sort((a, b) => a.d - b.d).slice(0, 5)
  if (!spots.length) { list.replaceChildren(el('li', { class: 'empty', text: t('no_data') })); return }
  list.replaceChildren(...spots.map((s) => el('li', { class: 'wifi-spot' },
    el('span', { class: 'name' }, `📶 ${s.name}`), el('span', { class: 'dist' }, `${fmtDistance(s.d)} ${t('app.away')}`), mapLink(s.lat, s.lon))))
}

async function loadPlaces () {
  const [hospitals, police] = await Promise.all([api('/api/v1/places?kind=hospital'), api('/api/v1/places?kind=police')])
  state.places = { hospital: hospitals.features, police: police.features }
  renderHelp()
}

function renderHelp () {
  if (!state.places) return
  const name = (p) => (lang() === 'th' && p.name_th ? p.name_th : p.name_en)
  const rows = [['hospital', 'app.hospital', '🏥'], ['police', 'app.police_station', '👮']].map(([kind, label, icon]) => {
    const near = state.places[kind].map((f) => ({ f, lat: f.geometry.coordinates[1], lon: f.geometry.coordinates[0] }))
      .map((x) => ({ ...x, d: distance(x.lat, x.lon) })).sort((a, b) => a.d - b.d)[0]
    if (!near) return el('li', { class: 'empty' }, `${t(label)}: ${t('no_data')}`)
    return el('li', { class: `help-${kind}` }, el('span', { class: 'name' }, `${icon} ${t(label)}: ${name(near.f.properties)}`),
      el('span', { class: 'dist' }, fmtDistance(near.d)), mapLink(near.lat, near.lon))
  })
  $('#help').replaceChildren(...rows)
}

// -- beaches (dissolved oxygen) and rain ------------------------------------------------------------------
async function loadSensors () {
  state.sensors = (await api('/api/v1/sensors/latest')).items
  renderBeaches()
}

function renderBeaches () {
  if (!state.sensors) return
  const recent = (s) => s.phenomenon_time && Date.now() - Date.parse(String(s.phenomenon_time).split('/').pop()) < 6 * 3600 * 1000
  const beaches = state.sensors.filter((s) => s.observed_property === 'dissolved_oxygen')
  const rains = state.sensors.filter((s) => ['precipitation', 'rainfall'].includes(s.observed_property) && s.geometry)
  const rows = beaches.map((s) => {
    const ok = recent(s) && typeof s.result === 'number'
    const status = !ok ? 'unknown' : (s.result < DO_POOR ? 'poor' : 'good')
    return el('li', { class: `beach water-${status}` }, el('span', { class: 'name' }, `🏖 ${s.thing}`),
      el('span', {}, `${t(`app.water_${status}`)}${ok ? ` (${s.result.toFixed(1)} mg/L)` : ''}`))
  })
  const nearRain = rains.map((s) => ({ s, d: distance(s.geometry.coordinates[1], s.geometry.coordinates[0]) })).sort((a, b) => a.d - b.d)[0]
  if (nearRain) {
    const v = recent(nearRain.s) && typeof nearRain.s.result === 'number' ? nearRain.s.result : 0
    const key = v <= 0 ? 'app.rain_none' : (v < 10 ? 'app.rain_light' : 'app.rain_heavy')
    rows.push(el('li', { class: 'rain' }, el('span', { class: 'name' }, `🌧 ${nearRain.s.thing}`),
      el('span', {}, `${t(key)} (${v} ${nearRain.s.unit || 'mm'}) · ${t('app.updated')} ${fmtTime(String(nearRain.s.phenomenon_time || '').split('/').pop())}`)))
  }
  $('#beaches').replaceChildren(...(rows.length ? rows : [el('li', { class: 'empty', text: t('no_data') })]))
}

// -- problem reports ----------------------------------------------------------------------------------------
function newRef () {
  if (crypto.randomUUID) return crypto.randomUUID()
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('')
}

function readFile (file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(reader.result)
    reader.onerror = () => reject(reader.error)
    reader.readAsDataURL(file)
  })
}

function fillCategories () {
  const sel = $('#r-category')
  const current = sel.value
  sel.replaceChildren(...CATEGORIES.map((c) => el('option', { value: c }, t(`cat.${c}`))))
  if (current) sel.value = current
}

async function submitReport (ev) {
  ev.preventDefault()
  const form = ev.currentTarget
  clearErrors(form)
  const result = $('#report-result')
  const body = { category: form.category.value, text: form.text.value.trim(), lang: lang(), client_ref: newRef() }
  if (form.use_location.checked && state.here) {
    body.lat = Number(state.here.lat.toFixed(6)); body.lon = Number(state.here.lon.toFixed(6))
    if (state.here.accuracy != null) body.accuracy_m = Math.round(state.here.accuracy)
  }
  const file = form.photo.files[0]
  if (file) {
    if (file.size > 8 * 1024 * 1024) { showErrors(form, new ApiError(400, { detail: 'photo: larger than 8 MB', field: 'photo', code: 'photo_too_large' })); return }
    body.photo = await readFile(file)
  }
  const button = form.querySelector('button[type=submit]')
  button.disabled = true
  try {
    const out = await api('/api/v1/reports', { method: 'POST', body, timeout: 60000 })
    done(out.code, 'app.sent')
    form.reset()
    form.use_location.checked = true
  } catch (err) {
    if (err instanceof NetworkError) {
      await outbox.add(body)
      result.replaceChildren(el('p', { class: 'queued' }, t('app.queued')))
      form.reset()
      form.use_location.checked = true
    } else {
      showErrors(form, err)
    }
  } finally {
    button.disabled = false
  }
}

function done (code, key) {
  const mine = JSON.parse(localStorage.getItem('citydata.reports') || '[]')
  mine.unshift(code)
  localStorage.setItem('citydata.reports', JSON.stringify(mine.slice(0, 20)))
  $('#report-result').replaceChildren(el('p', { class: 'sent' }, t(key), ' ', el('strong', { class: 'code' }, code)))
  $('#f-code').value = code
}

let flushing = false
async function flushOutbox () {
  if (flushing || !navigator.onLine) return
  flushing = true
  try {
    for (const body of await outbox.all()) {
      try {
        const out = await api('/api/v1/reports', { method: 'POST', body, timeout: 60000 })
        await outbox.remove(body.client_ref)
        done(out.code, 'app.queue_sent')
      } catch (err) {
        if (err instanceof NetworkError) break
        await outbox.remove(body.client_ref)       // refused for good (e.g. invalid): say so instead of retrying forever
        $('#report-result').replaceChildren(el('p', { class: 'field-error' }, err.message))
      }
    }
  } finally { flushing = false }
}

async function follow (ev) {
  ev.preventDefault()
  const form = ev.currentTarget
  clearErrors(form)
  const code = form.code.value.trim().toUpperCase()
  try {
    const s = await api(`/api/v1/reports/status/${encodeURIComponent(code)}`)
    $('#follow-result').textContent = `${s.code}: ${t(`rstate.${s.state}`)} · ${t(`cat.${s.category}`)} · ${fmtTime(s.created_at)}`
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) err.fields.code = err.message
    showErrors(form, err)
  }
}

// -- connection state and the service worker ------------------------------------------------------------
function netState () {
  const note = $('#net')
  note.hidden = navigator.onLine
  note.textContent = t('offline')
  if (navigator.onLine) flushOutbox()
}

async function boot () {
  const sel = $('#lang')
  sel.value = initLang('app', ['th', 'en', 'zh'])
  sel.addEventListener('change', () => setLang('app', sel.value))
  applyI18n(document)
  fillCategories()
  onLang(() => { fillCategories(); renderWarnings(); renderWifi(); renderHelp(); renderBeaches(); netState() })
  $('#report-form').addEventListener('submit', submitReport)
  $('#follow-form').addEventListener('submit', follow)
  window.addEventListener('online', netState)
  window.addEventListener('offline', netState)
  netState()
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('./sw.js', { scope: './' }).catch((err) => console.warn('no service worker', err))
  const jobs = [loadWarnings(), loadSensors().catch(() => null)]
  await locate()
  jobs.push(loadWifi().catch(() => renderWifi()), loadPlaces().catch(() => null))
  await Promise.allSettled(jobs)
  renderBeaches()
  flushOutbox()
  setInterval(flushOutbox, 30000)
  setInterval(() => { loadWarnings(); loadSensors().catch(() => null) }, 120000)
  document.body.dataset.ready = 'true'
}

boot()
