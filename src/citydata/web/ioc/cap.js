// The CAP warning composer: Thai and English texts, an area drawn on the map (a polygon), the XML preview the
// server would publish, then issue. Server validation errors are shown next to their fields.
import { L } from '../shared/map.js'
import { api, showErrors, clearErrors, el } from '../shared/api.js'
import { t } from '../shared/i18n.js'

const TEXTS = ['event', 'headline_en', 'headline_th', 'description_en', 'description_th', 'instruction_en', 'instruction_th']

export class CapComposer {
  constructor (form, map) {
    this.form = form
    this.map = map
    this.points = []
    this.polygon = null
    this.drawing = false
    this.shape = L.polygon([], { color: '#e65100', weight: 2, dashArray: '4 4', fillOpacity: 0.15 }).addTo(map)
    form.querySelector('#cap-draw').addEventListener('click', () => this.startDraw())
    form.querySelector('#cap-finish').addEventListener('click', () => this.finishDraw())
    form.querySelector('#cap-clear').addEventListener('click', () => this.clearArea())
    form.querySelector('#cap-preview').addEventListener('click', () => this.preview())
    form.addEventListener('submit', (ev) => { ev.preventDefault(); this.issue() })
    map.on('click', (ev) => this.addPoint(ev.latlng))
    this.info()
  }

  startDraw () {
    this.drawing = true
    this.points = []
    this.polygon = null
    this.shape.setLatLngs([])
    this.form.querySelector('#cap-finish').disabled = false
    this.map.getContainer().classList.add('drawing')
    this.info()
  }

  addPoint (latlng) {
    if (!this.drawing) return
    this.points.push(latlng)
    this.shape.setLatLngs(this.points)
    this.info()
  }

  finishDraw () {
    this.drawing = false
    this.map.getContainer().classList.remove('drawing')
    this.form.querySelector('#cap-finish').disabled = true
    if (this.points.length >= 3) {
      const ring = this.points.map((p) => [Number(p.lng.toFixed(5)), Number(p.lat.toFixed(5))])
      ring.push(ring[0])
      this.polygon = { type: 'Polygon', coordinates: [ring] }
    }
    this.info()
  }

  clearArea () {
    this.drawing = false
    this.points = []
    this.polygon = null
    this.shape.setLatLngs([])
    this.form.querySelector('#cap-finish').disabled = true
    this.info()
  }

  /** Set the area from code (the browser tests use it as if drawn). */
  setArea (latlngs) {
    this.startDraw()
    for (const p of latlngs) this.addPoint(L.latLng(p[0], p[1]))
    this.finishDraw()
  }

  info () {
    this.form.querySelector('#cap-area-info').textContent = `${this.points.length} ${t('cap.points')}${this.polygon ? ' ✓' : ''}`
  }

  spec () {
    const f = this.form
    const spec = { category: f.category.value, severity: f.severity.value, urgency: f.urgency.value, certainty: f.certainty.value }
    for (const name of TEXTS) {
      const v = f[name].value.trim()
      if (v) spec[name] = v
    }
    if (this.polygon) { spec.polygon = this.polygon; spec.area_desc = 'Area drawn by the IOC'; spec.area_desc_th = 'พื้นที่ที่ศูนย์ฯ กำหนด' }
    if (!spec.headline_en) spec.headline_en = ''
    if (!spec.event) spec.event = ''
    return spec
  }

  async preview () {
    clearErrors(this.form)
    const out = this.form.querySelector('#cap-xml')
    try {
      const xml = await api('/api/v1/web/cap-preview', { method: 'POST', body: this.spec(), text: true })
      out.hidden = false
      out.textContent = xml
    } catch (err) {
      out.hidden = true
      this.showAreaError(err)
      showErrors(this.form, err)
    }
  }

  showAreaError (err) {
    if (err.code === 'area_missing') err.fields.polygon = err.message
    if (err.code === 'thai_missing') err.fields.headline_th = err.message
  }

  async issue () {
    clearErrors(this.form)
    const result = this.form.querySelector('#cap-result')
    try {
      const w = await api('/api/v1/cap/warnings', { method: 'POST', body: this.spec() })
      const msg = (w.messages || []).at(-1)
      result.replaceChildren(t('cap.issued'), ' ', msg ? el('a', { href: `/cap/alerts/${msg.identifier}.xml` }, msg.identifier) : w.id)
      result.dataset.warningId = w.id
    } catch (err) {
      this.showAreaError(err)
      showErrors(this.form, err)
    }
  }
}
