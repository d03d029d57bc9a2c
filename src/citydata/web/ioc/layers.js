// Live layers over the reference map: sensors coloured by state with their latest values, cameras, WiFi
// hotspots with footfall, tourist density (k-anonymous counts from the server), travellers needing attention,
// open incidents and tourist reports. A layer whose API is not on this node shows "no data yet" in the control.
import { L } from '../shared/map.js'
import { api, optional, el } from '../shared/api.js'
import { t, fmtTime } from '../shared/i18n.js'

const STALE_MS = 2 * 3600 * 1000
const COLORS = { ok: '#2e7d32', stale: '#8d6e63', alert: '#d32f2f', none: '#9e9e9e' }

function pointOf (geometry) {
  if (!geometry) return null
  if (geometry.type === 'Point') return [geometry.coordinates[1], geometry.coordinates[0]]
  if (geometry.type === 'Feature') return pointOf(geometry.geometry)
  return null
}

export class LiveLayers {
  constructor (map, ref, { role, can }) {
    this.map = map
    this.ref = ref
    this.role = role
    this.can = can
    this.sensors = new Map()         // datastream id -> {item, marker}
    this.alertedStreams = new Set()
    this.groups = {
      sensors: L.layerGroup().addTo(map),
      cameras: L.layerGroup(),
      wifi: L.layerGroup(),
      density: L.layerGroup(),
      attention: L.layerGroup(),
      incidents: L.layerGroup().addTo(map),
      reports: L.layerGroup().addTo(map),
    }
    this.status = {}
    this.control = null
  }

  async load () {
    const jobs = [this.loadSensors(), this.loadCameras(), this.loadWifi()]
    if (this.can('tracking')) jobs.push(this.loadDensity(), this.loadAttention())
    if (this.can('alerts')) jobs.push(this.loadReports())
    await Promise.allSettled(jobs)
    this.buildControl()
    setInterval(() => { this.loadWifi(); if (this.can('tracking')) { this.loadDensity(); this.loadAttention() } }, 60000)
  }

  buildControl () {
    if (this.control) this.map.removeControl(this.control)
    const label = (key, name) => (this.status[key] === 'none' ? `${t(name)} — ${t('no_data')}` : t(name))
    const overlays = {
      [t('layer.province')]: this.ref.province,
      [t('layer.districts')]: this.ref.districts,
      [t('layer.subdistricts')]: this.ref.subdistricts,
      [t('layer.checkpoints')]: this.ref.checkpoints,
      [t('layer.piers')]: this.ref.piers,
      [label('sensors', 'layer.sensors')]: this.groups.sensors,
      [label('cameras', 'layer.cameras')]: this.groups.cameras,
      [label('wifi', 'layer.wifi')]: this.groups.wifi,
    }
    if (this.can('tracking')) {
      overlays[label('density', 'layer.density')] = this.groups.density
      overlays[label('attention', 'layer.attention')] = this.groups.attention
    }
    if (this.can('alerts')) {
      overlays[t('layer.incidents')] = this.groups.incidents
      overlays[label('reports', 'layer.reports')] = this.groups.reports
    }
    this.control = L.control.layers(null, overlays, { collapsed: false }).addTo(this.map)
  }

  redraw () {
    this.buildControl()
    for (const s of this.sensors.values()) this.styleSensor(s)
  }

  // -- sensors ---------------------------------------------------------------------------------------------
  async loadSensors () {
    const { items } = await api('/api/v1/sensors/latest')
    this.status.sensors = items.length ? 'ok' : 'none'
    for (const item of items) {
      const at = pointOf(item.geometry)
      if (!at) continue
      const marker = L.circleMarker(at, { radius: 6, weight: 1.5, color: '#fff', fillOpacity: 0.95 })
      const s = { item, marker }
      this.sensors.set(item.datastream_id, s)
      this.styleSensor(s)
      marker.addTo(this.groups.sensors)
    }
  }

  sensorState (item) {
    if (this.alertedStreams.has(item.datastream_id)) return 'alert'
    if (!item.phenomenon_time) return 'none'
    const time = Date.parse(String(item.phenomenon_time).split('/').pop())
    return Date.now() - time > STALE_MS ? 'stale' : 'ok'
  }

  styleSensor (s) {
    const state = this.sensorState(s.item)
    s.marker.setStyle({ fillColor: COLORS[state] })
    const v = s.item.result
    const value = v === null || v === undefined ? '—' : (typeof v === 'number' ? v.toFixed(2) : JSON.stringify(v))
    s.marker.bindTooltip(`${s.item.thing}<br>${s.item.observed_property}: <b>${value}</b> ${s.item.unit || ''}<br>${fmtTime(String(s.item.phenomenon_time || '').split('/').pop())}`)
  }

  onObservation (data) {
    const s = this.sensors.get(data.datastream_id)
    if (!s) return
    s.item.result = data.result
    s.item.phenomenon_time = data.phenomenonTime
    this.styleSensor(s)
  }

  onAlert (alert) {
    const ds = alert.data && (alert.data.datastream_id || (alert.evidence && alert.evidence.find((e) => e.kind === 'observation')?.summary?.datastream_id))
    if (ds) {
      if (alert.state === 'cleared') this.alertedStreams.delete(ds)
      else this.alertedStreams.add(ds)
      const s = this.sensors.get(ds)
      if (s) this.styleSensor(s)
    }
    if (alert.kind === 'report.citizen' && alert.location) this.addReport({ code: alert.data?.code || alert.subject, lat: alert.location.coordinates[1], lon: alert.location.coordinates[0], category: alert.data?.category })
  }

  // -- cameras, WiFi (other capabilities: "no data yet" until their API exists) ----------------------------
  async loadCameras () {
    const data = await optional('/api/v1/cameras').catch(() => null)
    const items = data ? (data.items || data.features || []) : []
    this.status.cameras = items.length ? 'ok' : 'none'
    this.groups.cameras.clearLayers()
    for (const c of items) {
      const at = c.geometry ? pointOf(c.geometry) : (c.lat != null ? [c.lat, c.lon] : null)
      if (!at) continue
      const p = c.properties || c
      L.circleMarker(at, { radius: 5, color: '#fff', weight: 1, fillColor: '#6a1b9a', fillOpacity: 1 })
        .bindTooltip(`${p.name || p.id}<br>${p.status || p.state || ''}`).addTo(this.groups.cameras)
    }
  }

  async loadWifi () {
    if (!['admin', 'operator', 'analyst'].includes(this.role)) { this.status.wifi = 'none'; return }   // wifi.read
    const data = await optional('/api/v1/wifi/map').catch(() => null)
    const features = data ? (data.features || []) : []
    this.status.wifi = features.length ? 'ok' : 'none'
    this.groups.wifi.clearLayers()
    for (const f of features) {
      const at = pointOf(f.geometry)
      if (!at) continue
      const p = f.properties || {}
      const footfall = Number(p.devices ?? 0)
      L.circleMarker(at, { radius: 3 + Math.min(12, Math.sqrt(footfall)), color: '#01579b', weight: 1, fillColor: '#29b6f6', fillOpacity: 0.7 })
        .bindTooltip(`${p.name || p.id}<br>${footfall} devices/h`).addTo(this.groups.wifi)
    }
  }

  // -- tracking (role-gated on the server too) -----------------------------------------------------------
  async loadDensity () {
    const data = await api('/api/v1/tracking/density').catch(() => null)
    this.groups.density.clearLayers()
    const counts = new Map((data?.items || []).map((i) => [String(i.id), i.count]))
    this.status.density = counts.size ? 'ok' : 'none'
    if (!counts.size) return
    const max = Math.max(...counts.values())
    this.ref.subdistricts.eachLayer((layer) => {
      const p = layer.feature.properties
      const n = counts.get(p.id) ?? counts.get(p.code)
      if (!n) return
      L.geoJSON(layer.feature, { style: { stroke: false, fillColor: '#ff6f00', fillOpacity: 0.15 + 0.55 * (n / max) }, interactive: true })
        .bindTooltip(`${p.name_en}: ${n}`).addTo(this.groups.density)
    })
  }

  async loadAttention () {
    const data = await api('/api/v1/tracking/attention').catch(() => null)
    this.attention = data?.items || []
    this.status.attention = this.attention.length ? 'ok' : 'none'
    this.groups.attention.clearLayers()
    for (const a of this.attention) {
      if (a.lat == null) continue
      L.circleMarker([a.lat, a.lon], { radius: 7, color: '#000', weight: 1.5, fillColor: '#ffca28', fillOpacity: 1 })
        .bindTooltip(`${a.traveller_id}<br>${a.reasons.join(', ')}<br>${fmtTime(a.last_seen_at)}`).addTo(this.groups.attention)
    }
    if (this.attentionNode) this.renderAttention()
  }

  attentionList (node) {
    this.attentionNode = node
    this.renderAttention()
  }

  renderAttention () {
    const items = this.attention || []
    this.attentionNode.replaceChildren(...(items.length
      ? items.map((a) => el('li', { class: 'alert sev-severe' }, el('p', { class: 'msg' }, `${a.traveller_id}: ${a.reasons.join(', ')}`),
        el('p', { class: 'kind' }, `${fmtTime(a.last_seen_at)}${a.now_in ? ` · ${a.now_in.name_en || a.now_in}` : ''}`)))
      : [el('li', { class: 'empty', text: t('no_data') })]))
  }

  // -- incidents and reports -----------------------------------------------------------------------------
  onIncident (i) {
    this.incidentMarkers ||= new Map()
    const old = this.incidentMarkers.get(i.id)
    if (old) { this.groups.incidents.removeLayer(old); this.incidentMarkers.delete(i.id) }
    const at = pointOf(i.location)
    if (!at || i.state === 'closed') return
    const m = L.circleMarker(at, { radius: 9, color: '#b71c1c', weight: 3, fillColor: '#fff', fillOpacity: 0.9 })
      .bindTooltip(`#${i.id} ${i.priority} ${i.title}<br>${t(`state.${i.state}`)}`)
    m.addTo(this.groups.incidents)
    this.incidentMarkers.set(i.id, m)
  }

  async loadReports () {
    const data = await api('/api/v1/reports?limit=200').catch(() => null)
    const items = data?.items || []
    this.status.reports = items.length ? 'ok' : 'none'
    for (const r of items) if (r.lat != null) this.addReport(r)
  }

  addReport (r) {
    this.reportMarkers ||= new Map()
    if (this.reportMarkers.has(r.code)) return
    const m = L.circleMarker([r.lat, r.lon], { radius: 7, color: '#fff', weight: 2, fillColor: '#ef6c00', fillOpacity: 1 })
      .bindTooltip(`${r.code} · ${t(`cat.${r.category}`)}`)
    m.addTo(this.groups.reports)
    this.reportMarkers.set(r.code, m)
    this.status.reports = 'ok'
  }

  flyTo (lat, lon) { this.map.setView([lat, lon], Math.max(this.map.getZoom(), 13)) }
}
