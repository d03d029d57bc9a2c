// The base map: Leaflet from npm (bundled, no CDN), an optional raster tile layer from config.js, and the
// reference geography drawn as vector layers on a plain background, so the map stays usable on a closed
// network or when the tile server fails (the tests run offline).
import L from 'leaflet'
import 'leaflet/dist/leaflet.css'
import { api, config } from './api.js'

export { L }

export function createMap (element, { onTilesFailed } = {}) {
  const cfg = config()
  const map = L.map(element, { preferCanvas: true, zoomSnap: 0.25, attributionControl: true, keyboard: true })
  map.setView([7.95, 98.34], 10)
  if (cfg.tileUrl) {
    let failed = 0
    let loaded = 0
    const tiles = L.tileLayer(cfg.tileUrl, { maxZoom: 19, attribution: cfg.tileAttribution || '' })
    tiles.on('tileload', () => { loaded += 1 })
    tiles.on('tileerror', () => {
      failed += 1
      if (failed === 4 && loaded === 0) {
        map.removeLayer(tiles)          // no tiles: the vector layers on the plain background
        element.classList.add('no-tiles')
        if (onTilesFailed) onTilesFailed()
      }
    })
    tiles.addTo(map)
  } else {
    element.classList.add('no-tiles')
  }
  return map
}

const STYLE = {
  province: { color: '#0b3d91', weight: 2.5, fillColor: '#2f6fd6', fillOpacity: 0.18 },
  otherProvince: { color: '#7a8594', weight: 1, fillColor: '#c9ced6', fillOpacity: 0.35 },
  district: { color: '#0b3d91', weight: 1.5, fill: false, dashArray: '6 4' },
  subdistrict: { color: '#4a6fa5', weight: 0.8, fill: false },
}

/** Province, districts, sub-districts, checkpoints and piers of the reference city, as named layers. */
export async function referenceLayers (map, provinceCode = '83') {
  const places = await api('/api/v1/places')
  const by = (kind) => places.features.filter((f) => f.properties.kind === kind)
  const home = by('province').filter((f) => f.properties.code === provinceCode)
  const others = L.geoJSON({ type: 'FeatureCollection', features: by('province').filter((f) => f.properties.code !== provinceCode) },
    { style: STYLE.otherProvince, interactive: false })
  const province = L.geoJSON({ type: 'FeatureCollection', features: home }, { style: STYLE.province })
  const districts = L.geoJSON({ type: 'FeatureCollection', features: by('district') }, {
    style: STYLE.district,
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.name_en} / ${f.properties.name_th || ''}`),
  })
  const subdistricts = L.geoJSON({ type: 'FeatureCollection', features: by('subdistrict') }, {
    style: STYLE.subdistrict,
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.name_en} / ${f.properties.name_th || ''}`),
  })
  const point = (color, radius) => (f, latlng) => L.circleMarker(latlng, {
    radius, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1,
  }).bindTooltip(`${f.properties.name_en}<br>${f.properties.name_th || ''}`)
  const checkpoints = L.geoJSON({ type: 'FeatureCollection', features: by('checkpoint') }, { pointToLayer: point('#c2185b', 8) })
  const piers = L.geoJSON({ type: 'FeatureCollection', features: by('pier') }, { pointToLayer: point('#00838f', 6) })
  others.addTo(map)
  province.addTo(map)
  districts.addTo(map)
  subdistricts.addTo(map)
  piers.addTo(map)
  checkpoints.addTo(map)          // on top: two checkpoints are piers too
  if (home.length) map.fitBounds(province.getBounds(), { padding: [10, 10] })
  return { places, province, districts, subdistricts, checkpoints, piers, others }
}
