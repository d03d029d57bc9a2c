// Calls to the platform API. Errors are application/problem+json: ApiError keeps the machine `code` and the
// per-field messages (`errors[].field` or `field`), so forms can show each message next to its field.

export class ApiError extends Error {
  constructor (status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`)
    this.status = status
    this.code = problem.code || 'http_error'
    this.problem = problem
    this.fields = {}
    for (const e of problem.errors || []) this.fields[e.field] = e.message
    if (problem.field && !this.fields[problem.field]) this.fields[problem.field] = problem.detail
  }
}

export class NetworkError extends Error {}

export async function api (path, { method = 'GET', body, headers = {}, timeout = 20000, text = false } = {}) {
  const ctrl = new AbortController()
  const timer = setTimeout(() => ctrl.abort(), timeout)
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin', signal: ctrl.signal }
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  let res
  try {
    res = await fetch(path, init)
  } catch (err) {
    throw new NetworkError(err.name === 'AbortError' ? 'timed out' : 'network unavailable')
  } finally {
    clearTimeout(timer)
  }
  const type = res.headers.get('content-type') || ''
  if (!res.ok) {
    let problem = { title: res.statusText, status: res.status }
    if (type.includes('json')) problem = await res.json().catch(() => problem)
    throw new ApiError(res.status, problem)
  }
  if (res.status === 204) return null
  if (text || !type.includes('json')) return res.text()
  return res.json()
}

/** GET that answers null on 404 (a capability that is not installed on this node yet) */
export async function optional (path) {
  try {
    return await api(path)
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null
    throw err
  }
}

/** Show an ApiError on a form: each field's message next to it, the rest in the form's [data-form-error]. */
export function showErrors (form, err) {
  clearErrors(form)
  const rest = []
  const fields = err instanceof ApiError ? err.fields : {}
  for (const [field, message] of Object.entries(fields)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`)
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`)
    if (slot) {
      slot.textContent = message
      slot.hidden = false
      if (input) { input.setAttribute('aria-invalid', 'true'); input.setAttribute('aria-describedby', slot.id) }
    } else {
      rest.push(`${field}: ${message}`)
    }
  }
  const general = form.querySelector('[data-form-error]')
  if (general && (rest.length || !Object.keys(fields).length)) {
    general.textContent = rest.length ? rest.join('; ') : err.message
    general.hidden = false
  }
  const first = form.querySelector('[aria-invalid="true"]')
  if (first) first.focus()
}

export function clearErrors (form) {
  for (const el of form.querySelectorAll('[data-error-for], [data-form-error]')) { el.textContent = ''; el.hidden = true }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid')
}

export function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v)
    else if (k === 'text') node.textContent = v
    else node.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c.nodeType ? c : String(c))
  return node
}

export function haversineM (lat1, lon1, lat2, lon2) {
  const r = 6371008.8
  const toRad = (d) => d * Math.PI / 180
  const dLat = toRad(lat2 - lat1)
  const dLon = toRad(lon2 - lon1)
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(lat1)) * Math.cos(toRad(lat2)) * Math.sin(dLon / 2) ** 2
  return 2 * r * Math.asin(Math.sqrt(a))
}

export function config () {
  return window.CITYDATA_CONFIG || { tileUrl: '', tileAttribution: '', timezone: 'Asia/Bangkok', city: 'phuket', k: 10 }
}
