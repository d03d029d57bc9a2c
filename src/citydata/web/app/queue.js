// The offline queue of problem reports: IndexedDB (photos can be megabytes, too big for localStorage). Each
// report carries its client_ref, so a report sent twice (a retry after a lost answer) is stored once.
const DB = 'citydata-app'
const STORE = 'outbox'

function open () {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'client_ref' })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

async function tx (mode, fn) {
  const db = await open()
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode)
    const result = fn(t.objectStore(STORE))
    t.oncomplete = () => { db.close(); resolve(result.result ?? result) }
    t.onerror = () => { db.close(); reject(t.error) }
  })
}

export const outbox = {
  add: (report) => tx('readwrite', (s) => s.put(report)),
  remove: (ref) => tx('readwrite', (s) => s.delete(ref)),
  all: () => tx('readonly', (s) => s.getAll()),
}
