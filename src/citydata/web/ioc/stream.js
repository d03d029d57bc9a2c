// The live stream (Server-Sent Events) with a visible state: live, or lost and reconnecting. EventSource
// reconnects by itself (resuming with Last-Event-ID); when the server refuses or the connection closes for good,
// a new EventSource is made with a growing delay, and the panels reload what they may have missed.
import { t } from '../shared/i18n.js'

export class Stream {
  constructor (indicator, events) {
    this.indicator = indicator
    this.url = `/api/v1/stream?events=${events}`
    this.handlers = {}
    this.delay = 1000
    this.wasDown = false
    this.source = null
  }

  on (name, fn) { (this.handlers[name] ||= []).push(fn) }

  emit (name, data) { for (const fn of this.handlers[name] || []) fn(data) }

  show (state) {
    this.state = state
    this.indicator.hidden = false
    this.indicator.dataset.state = state
    this.indicator.textContent = t(`stream.${state}`)
  }

  open () {
    this.show(this.wasDown ? 'down' : 'connecting')
    const source = new EventSource(this.url)
    this.source = source
    source.onopen = () => {
      this.delay = 1000
      this.show('live')
      if (this.wasDown) this.emit('reconnected', {})
      this.wasDown = false
    }
    source.onerror = () => {
      this.wasDown = true
      this.show('down')
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(() => this.open(), this.delay)
        this.delay = Math.min(this.delay * 2, 30000)
      }
    }
    for (const name of ['alert', 'incident', 'observation']) {
      source.addEventListener(name, (ev) => {
        try { this.emit(name, JSON.parse(ev.data)) } catch (err) { console.warn('bad SSE event', err) }
      })
    }
  }
}
