// The alert feed: active alerts, newest first, updated live. Acknowledge; open an incident from an alert;
// for a tourist report, read the report (text and photo; the read is audited on the server).
import { api, el, ApiError } from '../shared/api.js'
import { t, lang, fmtTime } from '../shared/i18n.js'

const PRIORITY = { extreme: 'P1', severe: 'P2', moderate: 'P3', minor: 'P4' }

export class AlertFeed {
  constructor (list, reportView, { board, live }) {
    this.list = list
    this.reportView = reportView
    this.board = board
    this.live = live
    this.alerts = new Map()
  }

  async load () {
    const { items } = await api('/api/v1/alerts?state=active&limit=200')
    this.alerts = new Map(items.map((a) => [a.id, a]))
    for (const a of items) this.live.onAlert(a)
    this.render()
  }

  upsert (alert) {
    if (alert.state === 'cleared') this.alerts.delete(alert.id)
    else this.alerts.set(alert.id, alert)
    this.render()
  }

  render () {
    const items = [...this.alerts.values()].sort((a, b) => (b.opened_at || '').localeCompare(a.opened_at || ''))
    this.list.replaceChildren(...(items.length ? items.map((a) => this.item(a)) : [el('li', { class: 'empty', text: t('alert.none') })]))
  }

  item (a) {
    const message = lang() === 'th' && a.message_th ? a.message_th : a.message
    const acked = a.state === 'acknowledged'
    const actions = el('div', { class: 'actions' },
      acked ? null : el('button', { type: 'button', class: 'ack', onclick: () => this.ack(a) }, t('alert.ack')),
      this.board ? el('button', { type: 'button', class: 'to-incident', onclick: () => this.toIncident(a) }, t('alert.incident')) : null,
      a.kind === 'report.citizen' && a.data && a.data.code
        ? el('button', { type: 'button', class: 'view-report', onclick: () => this.showReport(a.data.code) }, t('alert.report'))
        : null)
    const error = el('p', { class: 'field-error', role: 'alert', hidden: true })
    return el('li', { class: `alert sev-${a.severity} ${acked ? 'acked' : 'open'}`, 'data-alert-id': a.id, 'data-kind': a.kind },
      el('div', { class: 'line' },
        el('span', { class: 'badge', text: a.severity }),
        el('time', { datetime: a.opened_at, text: fmtTime(a.opened_at) }),
        el('span', { class: 'state', text: acked ? t('alert.acked') : t('alert.open') })),
      el('p', { class: 'msg', text: message }),
      el('p', { class: 'kind', text: `${a.kind} · ${a.subject}` }),
      actions, error)
  }

  async ack (a) {
    try {
      this.upsert(await api(`/api/v1/alerts/${a.id}/ack`, { method: 'POST', body: {} }))
    } catch (err) { this.fail(a, err) }
  }

  async toIncident (a) {
    try {
      const incident = await api('/api/v1/incidents', {
        method: 'POST',
        body: { title: (a.message || a.kind).slice(0, 300), alert_ids: [a.id], origin: 'alert',
                priority: PRIORITY[a.severity] || 'P3', location: a.location || null, zone_id: a.zone_id || null },
      })
      this.board.upsert(incident)
      this.board.focus(incident.id)
    } catch (err) { this.fail(a, err) }
  }

  fail (a, err) {
    const node = this.list.querySelector(`[data-alert-id="${a.id}"] .field-error`)
    if (node) { node.hidden = false; node.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : err.message }
  }

  async showReport (code) {
    const view = this.reportView
    view.hidden = false
    try {
      const r = await api(`/api/v1/reports/${encodeURIComponent(code)}`)
      view.replaceChildren(
        el('h3', {}, `${r.code} · ${t(`cat.${r.category}`)}`),
        el('p', { class: 'report-text', text: r.text || '—' }),
        el('p', { class: 'kind' }, `${fmtTime(r.created_at)} · ${r.lat != null ? `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)} (${r.location_source})` : '—'}`),
        r.has_photo ? el('img', { class: 'report-photo', src: `/api/v1/reports/${encodeURIComponent(code)}/photo`, alt: `Photo of report ${r.code}` }) : null,
        el('button', { type: 'button', onclick: () => { view.hidden = true } }, '×'))
      if (r.lat != null) this.live.flyTo(r.lat, r.lon)
    } catch (err) {
      view.replaceChildren(el('p', { class: 'field-error', text: err.message }))
    }
  }
}
