// Charts (Chart.js, only the parts used): rain against water level for a catchment and dissolved oxygen by
// beach from the sensors; WiFi footfall by zone and hour and arrivals by checkpoint from the analytics and
// WiFi APIs when they are on this node ("no data yet" otherwise).
import { Chart, BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js'
import { api, optional } from '../shared/api.js'
import { t, lang, fmtTime } from '../shared/i18n.js'

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip)
Chart.defaults.animation = false
Chart.defaults.maintainAspectRatio = false

const RAIN = ['precipitation', 'rainfall']
const PALETTE = ['#1565c0', '#c62828', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f', '#5d4037', '#ad1457']

function empty (canvasId, message) {
  const fig = document.getElementById(canvasId).closest('figure')
  const p = fig.querySelector('.empty')
  p.hidden = false
  p.textContent = message || t('no_data')
  fig.dataset.empty = 'true'
}

function point (geometry) {
  return geometry && geometry.type === 'Point' ? geometry.coordinates : null
}

async function series (datastreamId, top = 96) {
  const q = `$orderby=phenomenonTime desc&$top=${top}&$select=phenomenonTime,result`
  const data = await api(`/v1.1/Datastreams(${datastreamId})/Observations?${encodeURI(q)}`)
  return (data.value || []).map((o) => ({ x: Date.parse(String(o.phenomenonTime).split('/').pop()), y: Number(o.result) }))
    .filter((p) => Number.isFinite(p.y)).reverse()
}

export class Charts {
  constructor () { this.charts = {} }

  async load () {
    let latest = []
    try { latest = (await api('/api/v1/sensors/latest')).items } catch { latest = [] }
    await Promise.allSettled([this.rainLevel(latest), this.oxygen(latest), this.footfall(), this.arrivals()])
  }

  draw (id, config) {
    if (this.charts[id]) this.charts[id].destroy()
    this.charts[id] = new Chart(document.getElementById(id), config)
    document.getElementById(id).closest('figure').dataset.empty = 'false'
  }

  async rainLevel (latest) {
    const levels = latest.filter((s) => s.observed_property === 'water_level' && s.phenomenon_time)
    const rains = latest.filter((s) => RAIN.includes(s.observed_property) && s.phenomenon_time)
    if (!levels.length || !rains.length) return empty('chart-rain')
    const level = levels[0]
    const at = point(level.geometry)
    const dist = (s) => { const p = point(s.geometry); return p && at ? (p[0] - at[0]) ** 2 + (p[1] - at[1]) ** 2 : 1e9 }
    const rain = rains.slice().sort((a, b) => dist(a) - dist(b))[0]          // the gauge nearest the level station
    const [r, l] = await Promise.all([series(rain.datastream_id), series(level.datastream_id)])
    if (!r.length && !l.length) return empty('chart-rain')
    this.draw('chart-rain', {
      data: {
        datasets: [
          { type: 'bar', label: `${rain.thing} (${rain.unit || 'mm'})`, data: r, backgroundColor: '#64b5f6', yAxisID: 'rain' },
          { type: 'line', label: `${level.thing} (${level.unit || 'm'})`, data: l, borderColor: '#0d47a1', pointRadius: 0, yAxisID: 'level' },
        ],
      },
      options: {
        parsing: false,
        scales: {
          x: { type: 'linear', ticks: { callback: (v) => fmtTime(new Date(v).toISOString()), maxTicksLimit: 6 } },
          rain: { position: 'left', beginAtZero: true, title: { display: true, text: rain.unit || 'mm' } },
          level: { position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: level.unit || 'm' } },
        },
      },
    })
  }

  async oxygen (latest) {
    const beaches = latest.filter((s) => s.observed_property === 'dissolved_oxygen' && typeof s.result === 'number')
    if (!beaches.length) return empty('chart-do')
    this.draw('chart-do', {
      type: 'bar',
      data: {
        labels: beaches.map((s) => s.thing),
        datasets: [{ label: 'DO (mg/L)', data: beaches.map((s) => s.result), backgroundColor: beaches.map((s) => (s.result < 4 ? '#d32f2f' : '#2e7d32')) }],
      },
      options: { scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
    })
  }

  async footfall () {
    // the analytics query tourism_density: mean unique WiFi devices per sub-district and local hour of day
    const data = await optional('/api/v1/analytics/tourism_density').catch(() => null)
    const rows = (data?.rows || []).filter((r) => r.wifi_devices > 0)
    if (!rows.length) return empty('chart-footfall')
    const totals = new Map()
    for (const r of rows) totals.set(r.subdistrict, (totals.get(r.subdistrict) || 0) + r.wifi_devices)
    const zones = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([z]) => z)
    const hours = [...Array(24).keys()]
    const name = (z) => { const r = rows.find((x) => x.subdistrict === z); return (lang() === 'th' && r.name_th) || r.name_en }
    this.draw('chart-footfall', {
      type: 'line',
      data: {
        labels: hours.map((h) => `${String(h).padStart(2, '0')}:00`),
        datasets: zones.map((z, i) => ({ label: name(z), borderColor: PALETTE[i % PALETTE.length], pointRadius: 0,
          data: hours.map((h) => rows.find((r) => r.subdistrict === z && r.hour === h)?.wifi_devices ?? 0) })),
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'devices' } } } },
    })
  }

  async arrivals () {
    const data = await optional('/api/v1/web/arrivals-by-checkpoint').catch(() => null)
    const rows = data?.items || []
    if (!rows.length) return empty('chart-arrivals')
    this.draw('chart-arrivals', {
      type: 'bar',
      data: {
        labels: rows.map((r) => (lang() === 'th' && r.name_th) || r.name_en || r.checkpoint),
        datasets: [{ label: t('chart.arrivals'), data: rows.map((r) => r.arrivals), backgroundColor: '#00838f' }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    })
  }
}
