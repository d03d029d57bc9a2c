// The incident board: open incidents in columns by state, filtered by agency, each with its SLA timer
// (acknowledge, then on scene), dispatch to an agency, state moves, and notes.
import { api, el, ApiError } from '../shared/api.js'
import { t, lang, fmtTime, fmtDuration } from '../shared/i18n.js'

const COLUMNS = ['new', 'acknowledged', 'dispatched', 'on_scene', 'resolved']
const NEXT = {
  new: ['acknowledged', 'dispatched', 'closed'],
  acknowledged: ['dispatched', 'resolved', 'closed'],
  dispatched: ['on_scene', 'resolved'],
  on_scene: ['resolved'],
  resolved: ['closed', 'dispatched'],
}

export class IncidentBoard {
  constructor (root, agencySelect, { role, live }) {
    this.root = root
    this.select = agencySelect
    this.role = role
    this.live = live
    this.incidents = new Map()
    this.openNotes = new Set()       // cards whose notes are open stay open across live re-renders
    this.agencies = []
    this.canDispatch = ['admin', 'operator'].includes(role)
    this.select.addEventListener('change', () => this.render())
    setInterval(() => this.tick(), 1000)
  }

  async load () {
    if (this.canDispatch) {
      try { this.agencies = (await api('/api/v1/agencies')).items.filter((a) => a.enabled) } catch { this.agencies = [] }
    }
    const { items } = await api('/api/v1/incidents?state=open&limit=300')
    this.incidents = new Map(items.map((i) => [i.id, i]))
    for (const i of items) this.live.onIncident(i)
    this.fillAgencies()
    this.render()
  }

  fillAgencies () {
    const ids = new Set(this.agencies.map((a) => a.id))
    for (const i of this.incidents.values()) for (const a of i.agencies) ids.add(a)
    const current = this.select.value
    this.select.replaceChildren(el('option', { value: '' }, t('inc.all')),
      ...[...ids].sort().map((id) => el('option', { value: id }, this.agencyName(id))))
    this.select.value = current
  }

  agencyName (id) {
    const a = this.agencies.find((x) => x.id === id)
    if (!a) return id
    return lang() === 'th' && a.name_th ? a.name_th : a.name
  }

  upsert (incident) {
    if (incident.state === 'closed') this.incidents.delete(incident.id)
    else this.incidents.set(incident.id, { ...(this.incidents.get(incident.id) || {}), ...incident })
    this.fillAgencies()
    this.render()
  }

  focus (id) {
    const card = this.root.querySelector(`[data-incident-id="${id}"]`)
    if (card) { card.scrollIntoView({ block: 'nearest' }); card.querySelector('button, select')?.focus() }
  }

  render () {
    const agency = this.select.value
    const shown = [...this.incidents.values()].filter((i) => !agency || i.agencies.includes(agency))
    const columns = COLUMNS.map((s) => {
      const cards = shown.filter((i) => i.state === s).sort((a, b) => String(a.priority).localeCompare(String(b.priority)) || a.id - b.id)
      return el('section', { class: 'column', 'data-state': s, 'aria-label': t(`state.${s}`) },
        el('h3', {}, `${t(`state.${s}`)} (${cards.length})`),
        ...cards.map((i) => this.card(i)))
    })
    this.root.replaceChildren(...columns)
    if (!shown.length) this.root.append(el('p', { class: 'empty', text: t('inc.none') }))
    this.tick()
  }

  card (i) {
    const error = el('p', { class: 'field-error', role: 'alert', hidden: true })
    const fail = (err) => { error.hidden = false; error.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : err.message }
    const dispatch = this.canDispatch && ['new', 'acknowledged', 'dispatched', 'on_scene', 'resolved'].includes(i.state)
      ? el('form', {
        class: 'inline dispatch',
        onsubmit: async (ev) => {
          ev.preventDefault()
          const agencyId = ev.currentTarget.agency.value
          try { this.upsert(await api(`/api/v1/incidents/${i.id}/dispatch`, { method: 'POST', body: { agency: agencyId } })) } catch (err) { fail(err) }
        },
      },
      el('label', { class: 'sr', for: `dispatch-${i.id}` }, t('inc.agency')),
      el('select', { id: `dispatch-${i.id}`, name: 'agency' }, ...this.agencies.map((a) => el('option', { value: a.id }, this.agencyName(a.id)))),
      el('button', { type: 'submit' }, t('inc.dispatch')))
      : null
    const move = el('form', {
      class: 'inline move',
      onsubmit: async (ev) => {
        ev.preventDefault()
        const target = ev.currentTarget.state.value
        const body = { state: target }
        if (target === 'closed' || (i.state === 'resolved' && target === 'dispatched')) body.reason = 'closed from the IOC board'
        try { this.upsert(await api(`/api/v1/incidents/${i.id}/transition`, { method: 'POST', body })) } catch (err) { fail(err) }
      },
    },
    el('label', { class: 'sr', for: `move-${i.id}` }, t('inc.move')),
    el('select', { id: `move-${i.id}`, name: 'state' }, ...(NEXT[i.state] || []).map((s) => el('option', { value: s }, t(`state.${s}`)))),
    el('button', { type: 'submit' }, t('inc.move')))
    const notes = el('ul', { class: 'notes' })
    const details = el('details', {
      open: this.openNotes.has(i.id),
      ontoggle: async (ev) => {
        if (!ev.currentTarget.open) { this.openNotes.delete(i.id); return }
        this.openNotes.add(i.id)
        try {
          const full = await api(`/api/v1/incidents/${i.id}`)
          notes.replaceChildren(...(full.notes || []).map((n) => el('li', {}, `${fmtTime(n.at)} ${n.author || ''}: ${n.text}`)))
        } catch (err) { fail(err) }
      },
    },
    el('summary', {}, t('inc.notes')), notes,
    el('form', {
      class: 'inline note',
      onsubmit: async (ev) => {
        ev.preventDefault()
        const input = ev.currentTarget.text
        try {
          const n = await api(`/api/v1/incidents/${i.id}/notes`, { method: 'POST', body: { text: input.value } })
          notes.append(el('li', {}, `${fmtTime(n.at)} ${n.author || ''}: ${n.text}`))
          input.value = ''
        } catch (err) { fail(err) }
      },
    },
    el('label', { class: 'sr', for: `note-${i.id}` }, t('inc.note')),
    el('input', { id: `note-${i.id}`, name: 'text', maxlength: 10000, required: true }),
    el('button', { type: 'submit' }, t('inc.note'))))
    return el('article', { class: `incident prio-${String(i.priority).toLowerCase()}`, 'data-incident-id': i.id, tabindex: 0 },
      el('h4', {}, `#${i.id} ${i.priority} · ${i.title}`),
      el('p', { class: 'kind' }, `${fmtTime(i.created_at)}${i.agencies.length ? ` · ${i.agencies.map((a) => this.agencyName(a)).join(', ')}` : ''}`),
      el('p', { class: 'sla', 'data-ack-due': i.ack_due_at || '', 'data-scene-due': i.scene_due_at || '', 'data-state': i.state,
        'data-breaches': (i.breaches || []).length }),
      dispatch, move, details, error)
  }

  tick () {
    const now = Date.now()
    for (const node of this.root.querySelectorAll('.sla')) {
      const s = node.dataset.state
      const due = s === 'new' ? node.dataset.ackDue : (['acknowledged', 'dispatched'].includes(s) ? node.dataset.sceneDue : '')
      const label = s === 'new' ? t('inc.sla_ack') : t('inc.sla_scene')
      if (!due) { node.textContent = Number(node.dataset.breaches) ? t('inc.breached') : ''; continue }
      const left = (Date.parse(due) - now) / 1000
      node.textContent = left < 0 ? `${t('inc.breached')} ${fmtDuration(left)}` : `${label} ${fmtDuration(left)}`
      node.classList.toggle('breached', left < 0 || Number(node.dataset.breaches) > 0)
    }
  }
}
