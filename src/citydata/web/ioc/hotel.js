// A hotel's own guests (pseudonymous ids; names only with a stated purpose, audited on the server), with
// check-in and check-out. The server answers only for the caller's hotel.
import { api, showErrors, clearErrors, el } from '../shared/api.js'
import { t, fmtTime } from '../shared/i18n.js'

export class HotelPanel {
  constructor (panel) {
    this.panel = panel
    this.body = panel.querySelector('#guests tbody')
    this.form = panel.querySelector('#names-form')
    this.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.load(this.form.purpose.value.trim() || null) })
  }

  async load (purpose = null) {
    clearErrors(this.form)
    const url = purpose ? `/api/v1/tracking/hotel/guests?with_names=true&purpose=${encodeURIComponent(purpose)}` : '/api/v1/tracking/hotel/guests'
    try {
      const data = await api(url)
      this.panel.dataset.hotel = data.hotel_id
      this.render(data.items)
    } catch (err) {
      showErrors(this.form, err)
    }
  }

  render (items) {
    if (!items.length) { this.body.replaceChildren(el('tr', {}, el('td', { colspan: 5, text: t('hotel.none') }))); return }
    this.body.replaceChildren(...items.map((g) => el('tr', { 'data-traveller': g.traveller_id },
      el('td', {}, g.traveller_id), el('td', {}, g.name || '—'), el('td', {}, g.checked_out_at ? 'checked out' : (g.checked_in_at ? 'in house' : g.status)),
      el('td', {}, fmtTime(g.arrived_at)),
      el('td', {},
        g.checked_in_at ? null : el('button', { type: 'button', onclick: () => this.stay(g, 'check-in') }, t('hotel.checkin')),
        g.checked_in_at && !g.checked_out_at ? el('button', { type: 'button', onclick: () => this.stay(g, 'check-out') }, t('hotel.checkout')) : null))))
  }

  async stay (g, action) {
    try {
      await api(`/api/v1/tracking/hotel/guests/${encodeURIComponent(g.traveller_id)}/${action}`, { method: 'POST', body: {} })
      await this.load()
    } catch (err) { showErrors(this.form, err) }
  }
}
