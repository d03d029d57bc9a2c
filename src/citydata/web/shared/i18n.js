// Thai / English / Chinese texts and Asia/Bangkok time formatting. Elements with data-i18n="key" get the text,
// data-i18n-attr="aria-label:key,placeholder:key" get attributes. The choice is remembered per page.
import { config } from './api.js'

const M = {
  en: {
    // shared
    'lang.name': 'English', 'lang.label': 'Language', 'loading': 'Loading…', 'no_data': 'No data yet',
    'unavailable': 'Not available on this platform yet', 'offline': 'Offline: showing saved data',
    // IOC
    'ioc.title': 'Phuket Intelligent Operations Center', 'ioc.login': 'Sign in', 'ioc.username': 'Username',
    'ioc.password': 'Password', 'ioc.logout': 'Sign out', 'ioc.map': 'City map', 'ioc.alerts': 'Live alerts',
    'ioc.incidents': 'Incident board', 'ioc.cap': 'Public warning (CAP)', 'ioc.charts': 'Charts',
    'ioc.hotel': 'My hotel guests', 'ioc.reports': 'Tourist reports', 'ioc.attention': 'Travellers needing attention',
    'stream.live': 'Live', 'stream.connecting': 'Connecting…', 'stream.down': 'Connection lost: reconnecting…',
    'alert.ack': 'Acknowledge', 'alert.incident': 'Create incident', 'alert.report': 'View report',
    'alert.none': 'No active alerts', 'alert.acked': 'Acknowledged', 'alert.open': 'Open',
    'inc.agency': 'Agency', 'inc.all': 'All agencies', 'inc.dispatch': 'Dispatch', 'inc.move': 'Move to',
    'inc.note': 'Add note', 'inc.notes': 'Notes', 'inc.sla_ack': 'Ack due', 'inc.sla_scene': 'On scene due',
    'inc.breached': 'SLA breached', 'inc.none': 'No open incidents', 'inc.new_title': 'Title', 'inc.create': 'Open incident',
    'state.new': 'New', 'state.acknowledged': 'Acknowledged', 'state.dispatched': 'Dispatched',
    'state.on_scene': 'On scene', 'state.resolved': 'Resolved', 'state.closed': 'Closed',
    'cap.event': 'Event', 'cap.headline_en': 'Headline (English)', 'cap.headline_th': 'Headline (Thai)',
    'cap.description_en': 'Description (English)', 'cap.description_th': 'Description (Thai)',
    'cap.instruction_en': 'Instruction (English)', 'cap.instruction_th': 'Instruction (Thai)',
    'cap.severity': 'Severity', 'cap.urgency': 'Urgency', 'cap.certainty': 'Certainty', 'cap.category': 'Category',
    'cap.area': 'Area', 'cap.draw': 'Draw area on map', 'cap.finish': 'Finish area', 'cap.clear': 'Clear area',
    'cap.draw_hint': 'Click the map to add corners, then Finish area.', 'cap.points': 'corners',
    'cap.preview': 'Preview XML', 'cap.issue': 'Issue warning', 'cap.issued': 'Warning published',
    'chart.rain_level': 'Rain vs water level', 'chart.do': 'Dissolved oxygen by beach (mg/L)',
    'chart.footfall': 'WiFi footfall by zone and hour', 'chart.arrivals': 'Arrivals by checkpoint',
    'hotel.show_names': 'Show names', 'hotel.purpose': 'Purpose (recorded)', 'hotel.checkin': 'Check in',
    'hotel.checkout': 'Check out', 'hotel.none': 'No guests booked', 'layer.province': 'Province',
    'layer.districts': 'Districts', 'layer.subdistricts': 'Sub-districts', 'layer.checkpoints': 'Checkpoints',
    'layer.piers': 'Piers', 'layer.sensors': 'Sensors', 'layer.cameras': 'Cameras', 'layer.wifi': 'WiFi hotspots',
    'layer.density': 'Tourist density', 'layer.attention': 'Travellers (attention)', 'layer.incidents': 'Open incidents',
    'layer.reports': 'Tourist reports', 'map.no_tiles': 'Base map tiles unavailable: showing the vector layers only',
    // tourist app
    'app.title': 'Phuket Tourist Safety', 'app.emergency': 'Emergency numbers', 'app.police': 'Police',
    'app.tourist_police': 'Tourist police', 'app.medical': 'Medical emergency', 'app.warnings': 'Current warnings',
    'app.no_warnings': 'No warnings in force', 'app.wifi': 'Nearest free WiFi', 'app.beach': 'Beaches and rain',
    'app.help': 'Nearest help', 'app.hospital': 'Hospital', 'app.police_station': 'Police station',
    'app.report': 'Report a problem', 'app.category': 'Category', 'app.text': 'What happened?',
    'app.photo': 'Photo (optional)', 'app.use_location': 'Send my location', 'app.send': 'Send report',
    'app.sent': 'Report sent. Your follow-up code:', 'app.queued': 'You are offline. The report is saved and will be sent automatically.',
    'app.queue_sent': 'A saved report was sent. Follow-up code:', 'app.follow': 'Follow up a report',
    'app.code': 'Follow-up code', 'app.check': 'Check', 'app.locating': 'Finding your location…',
    'app.no_location': 'Location unavailable: distances are from Phuket Town', 'app.away': 'away',
    'app.directions': 'Map', 'app.water_good': 'Water quality good', 'app.water_poor': 'Water quality poor',
    'app.water_unknown': 'No recent reading', 'app.rain_none': 'No rain', 'app.rain_light': 'Light rain',
    'app.rain_heavy': 'Heavy rain', 'app.updated': 'Updated', 'app.install': 'Install app',
    'rstate.received': 'Received', 'rstate.in_ioc': 'With the operations center',
    'rstate.acknowledged': 'Being handled', 'rstate.closed': 'Closed',
    'cat.safety': 'Safety', 'cat.crime': 'Crime', 'cat.scam': 'Scam or overcharging', 'cat.medical': 'Medical',
    'cat.lost': 'Lost person or item', 'cat.environment': 'Pollution or beach', 'cat.flooding': 'Flooding',
    'cat.road': 'Road or traffic', 'cat.noise': 'Noise', 'cat.other': 'Other',
  },
  th: {
    'lang.name': 'ไทย', 'lang.label': 'ภาษา', 'loading': 'กำลังโหลด…', 'no_data': 'ยังไม่มีข้อมูล',
    'unavailable': 'ยังไม่มีบริการนี้ในระบบ', 'offline': 'ออฟไลน์: แสดงข้อมูลที่บันทึกไว้',
    'ioc.title': 'ศูนย์ปฏิบัติการอัจฉริยะภูเก็ต', 'ioc.login': 'เข้าสู่ระบบ', 'ioc.username': 'ชื่อผู้ใช้',
    'ioc.password': 'รหัสผ่าน', 'ioc.logout': 'ออกจากระบบ', 'ioc.map': 'แผนที่เมือง', 'ioc.alerts': 'การแจ้งเตือนสด',
    'ioc.incidents': 'กระดานเหตุการณ์', 'ioc.cap': 'ประกาศเตือนภัยสาธารณะ (CAP)', 'ioc.charts': 'แผนภูมิ',
    'ioc.hotel': 'แขกของโรงแรม', 'ioc.reports': 'แจ้งเหตุจากนักท่องเที่ยว', 'ioc.attention': 'นักท่องเที่ยวที่ต้องติดตาม',
    'stream.live': 'สด', 'stream.connecting': 'กำลังเชื่อมต่อ…', 'stream.down': 'การเชื่อมต่อขาด: กำลังเชื่อมต่อใหม่…',
    'alert.ack': 'รับทราบ', 'alert.incident': 'สร้างเหตุการณ์', 'alert.report': 'ดูรายงาน',
    'alert.none': 'ไม่มีการแจ้งเตือน', 'alert.acked': 'รับทราบแล้ว', 'alert.open': 'ใหม่',
    'inc.agency': 'หน่วยงาน', 'inc.all': 'ทุกหน่วยงาน', 'inc.dispatch': 'สั่งการ', 'inc.move': 'เปลี่ยนสถานะเป็น',
    'inc.note': 'เพิ่มบันทึก', 'inc.notes': 'บันทึก', 'inc.sla_ack': 'ต้องรับทราบภายใน', 'inc.sla_scene': 'ต้องถึงที่เกิดเหตุภายใน',
    'inc.breached': 'เกินเวลาที่กำหนด', 'inc.none': 'ไม่มีเหตุการณ์ค้าง', 'inc.new_title': 'หัวข้อ', 'inc.create': 'เปิดเหตุการณ์',
    'state.new': 'ใหม่', 'state.acknowledged': 'รับทราบ', 'state.dispatched': 'สั่งการแล้ว',
    'state.on_scene': 'ถึงที่เกิดเหตุ', 'state.resolved': 'แก้ไขแล้ว', 'state.closed': 'ปิด',
    'cap.event': 'เหตุการณ์', 'cap.headline_en': 'หัวข้อ (อังกฤษ)', 'cap.headline_th': 'หัวข้อ (ไทย)',
    'cap.description_en': 'รายละเอียด (อังกฤษ)', 'cap.description_th': 'รายละเอียด (ไทย)',
    'cap.instruction_en': 'คำแนะนำ (อังกฤษ)', 'cap.instruction_th': 'คำแนะนำ (ไทย)',
    'cap.severity': 'ความรุนแรง', 'cap.urgency': 'ความเร่งด่วน', 'cap.certainty': 'ความแน่นอน', 'cap.category': 'ประเภท',
    'cap.area': 'พื้นที่', 'cap.draw': 'วาดพื้นที่บนแผนที่', 'cap.finish': 'จบการวาด', 'cap.clear': 'ล้างพื้นที่',
    'cap.draw_hint': 'คลิกบนแผนที่เพื่อเพิ่มจุด แล้วกด จบการวาด', 'cap.points': 'จุด',
    'cap.preview': 'ดูตัวอย่าง XML', 'cap.issue': 'ออกประกาศ', 'cap.issued': 'ออกประกาศแล้ว',
    'chart.rain_level': 'ฝนเทียบระดับน้ำ', 'chart.do': 'ออกซิเจนละลายน้ำตามชายหาด (มก./ล.)',
    'chart.footfall': 'ผู้ใช้ WiFi ตามพื้นที่และชั่วโมง', 'chart.arrivals': 'ผู้เดินทางเข้าตามด่าน',
    'hotel.show_names': 'แสดงชื่อ', 'hotel.purpose': 'วัตถุประสงค์ (บันทึกไว้)', 'hotel.checkin': 'เช็คอิน',
    'hotel.checkout': 'เช็คเอาท์', 'hotel.none': 'ไม่มีแขกจอง', 'layer.province': 'จังหวัด',
    'layer.districts': 'อำเภอ', 'layer.subdistricts': 'ตำบล', 'layer.checkpoints': 'ด่าน',
    'layer.piers': 'ท่าเรือ', 'layer.sensors': 'เซนเซอร์', 'layer.cameras': 'กล้อง', 'layer.wifi': 'จุด WiFi',
    'layer.density': 'ความหนาแน่นนักท่องเที่ยว', 'layer.attention': 'นักท่องเที่ยว (ต้องติดตาม)', 'layer.incidents': 'เหตุการณ์',
    'layer.reports': 'แจ้งเหตุ', 'map.no_tiles': 'โหลดแผนที่พื้นหลังไม่ได้: แสดงเฉพาะชั้นข้อมูล',
    'app.title': 'ความปลอดภัยนักท่องเที่ยวภูเก็ต', 'app.emergency': 'หมายเลขฉุกเฉิน', 'app.police': 'ตำรวจ',
    'app.tourist_police': 'ตำรวจท่องเที่ยว', 'app.medical': 'เจ็บป่วยฉุกเฉิน', 'app.warnings': 'ประกาศเตือนภัย',
    'app.no_warnings': 'ไม่มีประกาศเตือนภัย', 'app.wifi': 'WiFi ฟรีใกล้คุณ', 'app.beach': 'ชายหาดและฝน',
    'app.help': 'ความช่วยเหลือใกล้คุณ', 'app.hospital': 'โรงพยาบาล', 'app.police_station': 'สถานีตำรวจ',
    'app.report': 'แจ้งปัญหา', 'app.category': 'ประเภท', 'app.text': 'เกิดอะไรขึ้น?',
    'app.photo': 'รูปภาพ (ถ้ามี)', 'app.use_location': 'ส่งตำแหน่งของฉัน', 'app.send': 'ส่งรายงาน',
    'app.sent': 'ส่งรายงานแล้ว รหัสติดตาม:', 'app.queued': 'คุณออฟไลน์อยู่ บันทึกรายงานไว้แล้ว และจะส่งอัตโนมัติ',
    'app.queue_sent': 'ส่งรายงานที่บันทึกไว้แล้ว รหัสติดตาม:', 'app.follow': 'ติดตามรายงาน',
    'app.code': 'รหัสติดตาม', 'app.check': 'ตรวจสอบ', 'app.locating': 'กำลังหาตำแหน่ง…',
    'app.no_location': 'ไม่ทราบตำแหน่ง: ระยะทางวัดจากตัวเมืองภูเก็ต', 'app.away': '',
    'app.directions': 'แผนที่', 'app.water_good': 'คุณภาพน้ำดี', 'app.water_poor': 'คุณภาพน้ำไม่ดี',
    'app.water_unknown': 'ไม่มีข้อมูลล่าสุด', 'app.rain_none': 'ไม่มีฝน', 'app.rain_light': 'ฝนเล็กน้อย',
    'app.rain_heavy': 'ฝนตกหนัก', 'app.updated': 'ปรับปรุง', 'app.install': 'ติดตั้งแอป',
    'rstate.received': 'ได้รับแล้ว', 'rstate.in_ioc': 'อยู่ที่ศูนย์ปฏิบัติการ',
    'rstate.acknowledged': 'กำลังดำเนินการ', 'rstate.closed': 'ปิดแล้ว',
    'cat.safety': 'ความปลอดภัย', 'cat.crime': 'อาชญากรรม', 'cat.scam': 'หลอกลวงหรือโก่งราคา', 'cat.medical': 'การแพทย์',
    'cat.lost': 'คนหรือของหาย', 'cat.environment': 'มลพิษหรือชายหาด', 'cat.flooding': 'น้ำท่วม',
    'cat.road': 'ถนนหรือการจราจร', 'cat.noise': 'เสียงดัง', 'cat.other': 'อื่น ๆ',
  },
  zh: {
    'lang.name': '中文', 'lang.label': '语言', 'loading': '加载中…', 'no_data': '暂无数据',
    'unavailable': '此服务暂不可用', 'offline': '离线：显示已保存的数据',
    'app.title': '普吉岛游客安全', 'app.emergency': '紧急电话', 'app.police': '报警',
    'app.tourist_police': '旅游警察', 'app.medical': '医疗急救', 'app.warnings': '当前预警',
    'app.no_warnings': '目前没有预警', 'app.wifi': '附近免费WiFi', 'app.beach': '海滩与降雨',
    'app.help': '附近求助', 'app.hospital': '医院', 'app.police_station': '警察局',
    'app.report': '报告问题', 'app.category': '类别', 'app.text': '发生了什么？',
    'app.photo': '照片（可选）', 'app.use_location': '发送我的位置', 'app.send': '发送报告',
    'app.sent': '报告已发送。您的跟进编号：', 'app.queued': '您当前离线。报告已保存，联网后将自动发送。',
    'app.queue_sent': '已发送保存的报告。跟进编号：', 'app.follow': '跟进报告',
    'app.code': '跟进编号', 'app.check': '查询', 'app.locating': '正在定位…',
    'app.no_location': '无法定位：距离从普吉镇计算', 'app.away': '',
    'app.directions': '地图', 'app.water_good': '水质良好', 'app.water_poor': '水质较差',
    'app.water_unknown': '暂无最新数据', 'app.rain_none': '无雨', 'app.rain_light': '小雨',
    'app.rain_heavy': '大雨', 'app.updated': '更新于', 'app.install': '安装应用',
    'rstate.received': '已收到', 'rstate.in_ioc': '已转交指挥中心', 'rstate.acknowledged': '处理中', 'rstate.closed': '已结案',
    'cat.safety': '安全', 'cat.crime': '犯罪', 'cat.scam': '诈骗或乱收费', 'cat.medical': '医疗',
    'cat.lost': '人员或物品走失', 'cat.environment': '污染或海滩', 'cat.flooding': '洪水',
    'cat.road': '道路或交通', 'cat.noise': '噪音', 'cat.other': '其他',
  },
}

let current = 'en'
const listeners = []

export function initLang (page, allowed) {
  const saved = localStorage.getItem(`citydata.lang.${page}`)
  const nav = (navigator.language || 'en').slice(0, 2)
  current = allowed.includes(saved) ? saved : (allowed.includes(nav) ? nav : 'en')
  document.documentElement.lang = current
  return current
}

export function setLang (page, lang) {
  current = lang
  localStorage.setItem(`citydata.lang.${page}`, lang)
  document.documentElement.lang = lang
  applyI18n(document)
  for (const fn of listeners) fn(lang)
}

export function onLang (fn) { listeners.push(fn) }
export function lang () { return current }

export function t (key) {
  return (M[current] && M[current][key]) ?? M.en[key] ?? key
}

export function applyI18n (root) {
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n)
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':')
      node.setAttribute(attr, t(key))
    }
  }
}

const LOCALES = { en: 'en-GB', th: 'th-TH', zh: 'zh-CN' }

/** A timestamp shown in the city's time zone (Asia/Bangkok), in the page language. */
export function fmtTime (iso, { date = true } = {}) {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return new Intl.DateTimeFormat(LOCALES[current] || 'en-GB', {
    timeZone: config().timezone || 'Asia/Bangkok',
    ...(date ? { day: '2-digit', month: 'short' } : {}),
    hour: '2-digit', minute: '2-digit', second: date ? undefined : '2-digit', hour12: false,
  }).format(d)
}

/** Seconds as "-1:05:03" / "12:30" for SLA timers. */
export function fmtDuration (seconds) {
  const sign = seconds < 0 ? '-' : ''
  let s = Math.abs(Math.round(seconds))
  const h = Math.floor(s / 3600); s -= h * 3600
  const m = Math.floor(s / 60); s -= m * 60
  const pad = (n) => String(n).padStart(2, '0')
  return h ? `${sign}${h}:${pad(m)}:${pad(s)}` : `${sign}${m}:${pad(s)}`
}
