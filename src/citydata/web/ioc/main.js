// The IOC dashboard: sign in, then the panels the caller's role may see. Data comes from the platform API with
// the session cookie; live changes arrive over Server-Sent Events (/api/v1/stream).
import './ioc.css'
import { api, showErrors, clearErrors, config } from '../shared/api.js'
import { initLang, setLang, applyI18n, onLang, t } from '../shared/i18n.js'
import { createMap, referenceLayers } from '../shared/map.js'
import { LiveLayers } from './layers.js'
import { AlertFeed } from './alerts.js'
import { IncidentBoard } from './incidents.js'
import { CapComposer } from './cap.js'
import { Charts } from './charts.js'
import { HotelPanel } from './hotel.js'
import { Stream } from './stream.js'

const RESPONDERS = ['admin', 'operator', 'police', 'tourist_police', 'marine_police', 'health']
const PANELS = {   // what each role may see (the server enforces it again; this only avoids empty panels)
  alerts: RESPONDERS,
  incidents: RESPONDERS,
  tracking: ['admin', 'operator', 'police', 'tourist_police', 'marine_police'],
  hotel: ['hotel'],
  cap: ['admin', 'operator'],
  charts: ['admin', 'operator', 'analyst'],
}

const $ = (sel) => document.querySelector(sel)
const state = { me: null }
window.citydata = state            // for debugging and the browser tests (map projection, panels)

async function boot () {
  const langSel = $('#lang')
  langSel.value = initLang('ioc', ['en', 'th'])
  langSel.addEventListener('change', () => setLang('ioc', langSel.value))
  applyI18n(document)
  $('#login-form').addEventListener('submit', login)
  $('#logout').addEventListener('click', logout)
  let me = null
  try { me = await api('/api/v1/auth/me') } catch { me = null }
  if (!me || me.role === 'public' || me.kind === 'anonymous') return showLogin()
  await start(me)
}

function showLogin () {
  $('#login-view').hidden = false
  $('#main').hidden = true
  $('#login-username').focus()
}

async function login (ev) {
  ev.preventDefault()
  const form = ev.currentTarget
  clearErrors(form)
  const body = { username: form.username.value.trim(), password: form.password.value }
  try {
    await api('/api/v1/auth/login', { method: 'POST', body })
    const me = await api('/api/v1/auth/me')
    $('#login-view').hidden = true
    form.reset()
    await start(me)
  } catch (err) {
    showErrors(form, err)
  }
}

async function logout () {
  await api('/api/v1/auth/logout', { method: 'POST' }).catch(() => null)
  window.location.reload()
}

async function start (me) {
  state.me = me
  const role = me.role
  $('#whoami').textContent = `${me.subject} · ${role}${me.agency ? ` · ${me.agency}` : ''}`
  $('#logout').hidden = false
  $('#main').hidden = false
  for (const panel of document.querySelectorAll('[data-needs]')) {
    panel.hidden = !(PANELS[panel.dataset.needs] || []).includes(role)
  }
  const can = (name) => (PANELS[name] || []).includes(role)

  const note = $('#map-note')
  const map = createMap($('#map'), { onTilesFailed: () => { note.hidden = false; note.textContent = t('map.no_tiles') } })
  state.map = map
  const ref = await referenceLayers(map, '83')
  state.reference = ref
  const live = new LiveLayers(map, ref, { role, can })
  state.live = live
  await live.load()

  const stream = new Stream($('#stream-status'), can('alerts') ? 'alert,incident,observation' : 'observation')
  state.stream = stream
  stream.on('observation', (data) => live.onObservation(data))
  if (can('alerts')) {
    const board = can('incidents') ? new IncidentBoard($('#board'), $('#agency-filter'), { role, live }) : null
    const feed = new AlertFeed($('#alerts'), $('#report-view'), { board, live })
    state.feed = feed
    state.board = board
    await feed.load()
    if (board) await board.load()
    stream.on('alert', (data) => { const a = data.alert || data; feed.upsert(a); live.onAlert(a) })
    stream.on('incident', (data) => { const i = data.incident || data; if (board) board.upsert(i); live.onIncident(i) })
    stream.on('reconnected', () => { feed.load(); if (board) board.load() })
  }
  if (can('tracking')) live.attentionList($('#attention'))
  if (can('cap')) state.cap = new CapComposer($('#cap-form'), map)
  if (can('charts')) { state.charts = new Charts(); state.charts.load() }
  if (can('hotel')) { state.hotel = new HotelPanel($('#panel-hotel')); state.hotel.load() }
  stream.open()
  onLang(() => { live.redraw(); if (state.feed) state.feed.render(); if (state.board) state.board.render() })
  document.body.dataset.ready = 'true'
  void config()
}

boot()
