// The Yjs side of the load generator for steady-rate scenarios, in Node with
// the reference `yjs` (a Python/pycrdt client costs ~40 us per received update
// and cannot find a fast Yjs server's ceiling on one core).
//
// Same workload and latency definition as intelgraph_collab.bench: each write
// sets one key of the Y.Map "annotations" to an annotation object carrying
// the writer (bc), its index (bk) and the send time (bt, microseconds of
// CLOCK_MONOTONIC, which process.hrtime shares with Python's monotonic_ns);
// each receiver records now - bt when the map observer sees the key.
//
//   node bench/peers/yjs_load.mjs '<spec json>'   -> JSON result on stdout
// spec: {host, port, protocol: "y-websocket"|"hocuspocus", rooms, clients, rate,
//        duration, warmup, pad, slow_reader, drain_timeout, room_prefix, server_pid}
// Called by `intelgraph-collab bench --yjs-driver bench/peers/yjs_load.mjs`.
import { readFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const spec = JSON.parse(process.argv[2])
const hocuspocus = spec.protocol === 'hocuspocus'
const LOCAL = Symbol('local')
const CLK_TCK = 100

const nowNs = () => process.hrtime.bigint()
const nowUs = () => Number(process.hrtime.bigint() / 1000n)

// -- what a run records (as collector.py) -----------------------------------
const col = {
  windowStart: Infinity,
  windowEnd: Infinity,
  writesSent: 0,
  expected: 0,
  received: 0,
  duplicates: 0,
  latencies: [], // ns
  closes: {}
}

class Client {
  constructor (index, room, pad) {
    this.index = index
    this.room = room
    this.pad = pad
    this.doc = new Y.Doc()
    this.map = this.doc.getMap('annotations')
    this.next = 0
    this.seen = new Map()
    this.syncing = false
    this.doc.on('update', (update, origin) => {
      if (origin === LOCAL) this.send(this.syncMessage(2, update))
    })
    this.map.observe((event, tr) => {
      if (tr.origin === LOCAL || this.syncing) return
      const now = nowNs()
      for (const key of event.keysChanged) {
        const v = this.map.get(key)
        if (v && v.bt !== undefined) this.deliver(v.bc, v.bk, v.bt, now)
      }
    })
  }

  deliver (writer, index, tUs, now) {
    if (!(tUs >= col.windowStart && tUs < col.windowEnd)) return
    let seen = this.seen.get(writer)
    if (!seen) { seen = new Set(); this.seen.set(writer, seen) }
    if (seen.has(index)) { col.duplicates++; return }
    seen.add(index)
    col.received++
    col.latencies.push(Number(now - BigInt(tUs) * 1000n))
  }

  header (encoder) {
    if (hocuspocus) encoding.writeVarString(encoder, this.room)
  }

  syncMessage (sub, data) {
    const e = encoding.createEncoder()
    this.header(e)
    encoding.writeVarUint(e, 0)
    encoding.writeVarUint(e, sub)
    encoding.writeVarUint8Array(e, data)
    return encoding.toUint8Array(e)
  }

  send (msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(msg)
  }

  open () {
    return new Promise((resolve, reject) => {
      const path = `/${this.room}`
      this.ready = resolve
      this.ws = new WebSocket(`ws://${spec.host}:${spec.port}${path}`, { perMessageDeflate: false })
      this.ws.binaryType = 'nodebuffer'
      this.ws.on('open', () => {
        if (hocuspocus) {
          const e = encoding.createEncoder()
          this.header(e)
          encoding.writeVarUint(e, 2) // Auth
          encoding.writeVarUint(e, 0) // Token
          encoding.writeVarString(e, '')
          this.send(encoding.toUint8Array(e))
        }
        this.send(this.syncMessage(0, Y.encodeStateVector(this.doc)))
      })
      this.ws.on('message', (data) => this.onMessage(data))
      this.ws.on('error', reject)
      this.ws.on('close', (code) => { col.closes[code] = (col.closes[code] || 0) + 1 })
      setTimeout(() => reject(new Error('open timed out')), 30000)
    })
  }

  onMessage (data) {
    const d = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    if (hocuspocus) decoding.readVarString(d)
    const type = decoding.readVarUint(d)
    if (type !== 0 && type !== 4) return
    const sub = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (sub === 0) {
      this.send(this.syncMessage(1, Y.encodeStateAsUpdate(this.doc, payload)))
    } else if (sub === 1) {
      this.syncing = true
      Y.applyUpdate(this.doc, payload, 'remote')
      this.syncing = false
      if (this.ready) { this.ready(); this.ready = null }
    } else {
      Y.applyUpdate(this.doc, payload, 'remote')
    }
  }

  write (receivers) {
    const k = this.next++
    const t = nowUs()
    const id = `w${this.index}-${k % 100}`
    const ann = {
      id,
      target_type: 'ENTITY',
      target_id: `entity-${k % 1000}`,
      kind: 'tag',
      color: '#e11d48',
      confidence: 'HIGH',
      bc: this.index,
      bk: k,
      bt: t
    }
    if (this.pad) ann.text = this.pad
    this.doc.transact(() => this.map.set(id, ann), LOCAL)
    if (t >= col.windowStart && t < col.windowEnd) {
      col.writesSent++
      col.expected += receivers
    }
  }
}

// -- /proc ---------------------------------------------------------------------
const procTicks = (pid) => {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  } catch { return null }
}
const machineTicks = () => {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].split(/\s+/).slice(1).map(Number)
  return [f[0] + f[1] + f[2] + f[5] + f[6], f[7] || 0]
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const pad = spec.pad ? 'x'.repeat(spec.pad) : ''
  const clients = []
  for (let r = 0; r < spec.rooms; r++) {
    const room = `${spec.room_prefix}-${process.pid}-${Date.now() % 1e8}-${r}`
    for (let c = 0; c < spec.clients; c++) clients.push(new Client(r * spec.clients + c, room, pad))
  }
  // First client of each room alone (pycrdt-websocket's room start races).
  const firsts = new Map()
  for (const c of clients) if (!firsts.has(c.room)) firsts.set(c.room, c)
  await Promise.all([...firsts.values()].map((c) => c.open()))
  await Promise.all(clients.filter((c) => firsts.get(c.room) !== c).map((c) => c.open()))
  const slow = spec.slow_reader ? clients[0] : null
  if (slow) slow.ws._socket.pause()

  const writers = clients.filter((c) => c !== slow)
  const readersInRoom = new Map()
  for (const c of writers) readersInRoom.set(c.room, (readersInRoom.get(c.room) || 0) + 1)
  const intervalNs = 1e9 / spec.rate
  const t0 = Number(nowNs()) + 100e6
  const tWindow = t0 + spec.warmup * 1e9
  const tEnd = tWindow + spec.duration * 1e9
  col.windowStart = Math.floor(tWindow / 1000)
  col.windowEnd = Math.floor(tEnd / 1000)
  const due = writers.map(() => t0 + Math.random() * intervalNs)
  const sendLag = []
  const lag = monitorEventLoopDelay({ resolution: 5 })
  let inWindow = false
  let cpu0, srv0, mach0, wall0
  let planned = 0

  await new Promise((resolve) => {
    const tick = () => {
      const now = Number(nowNs())
      if (now >= tEnd) return resolve()
      if (!inWindow && now >= tWindow) {
        inWindow = true
        lag.enable()
        cpu0 = process.cpuUsage()
        srv0 = spec.server_pid ? procTicks(spec.server_pid) : null
        mach0 = machineTicks()
        wall0 = now
      }
      let soonest = Infinity
      for (let i = 0; i < writers.length; i++) {
        while (due[i] <= now && due[i] < tEnd) {
          writers[i].write(readersInRoom.get(writers[i].room) - 1)
          if (due[i] >= tWindow) { sendLag.push(Number(nowNs()) - due[i]); planned++ }
          due[i] += intervalNs
        }
        if (due[i] < soonest) soonest = due[i]
      }
      setTimeout(tick, Math.max(0, Math.min(soonest, tEnd) - Number(nowNs())) / 1e6)
    }
    tick()
  })
  lag.disable()
  const wall = (Number(nowNs()) - wall0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  const genPct = (cpu.user + cpu.system) / 1e4 / wall
  const srv1 = spec.server_pid ? procTicks(spec.server_pid) : null
  const srvPct = srv0 !== null && srv1 !== null ? (100 * (srv1 - srv0)) / CLK_TCK / wall : null
  const mach1 = machineTicks()
  const machPct = (100 * (mach1[0] - mach0[0])) / CLK_TCK / wall
  const stealPct = (100 * (mach1[1] - mach0[1])) / CLK_TCK / wall

  const drainUntil = Date.now() + spec.drain_timeout * 1000
  while (Date.now() < drainUntil && col.received < col.expected) await sleep(10)

  sendLag.sort((a, b) => a - b)
  const p99 = (xs) => (xs.length ? xs[Math.max(Math.ceil(0.99 * xs.length), 1) - 1] : null)
  const out = {
    writes_sent: col.writesSent,
    writes_planned: planned,
    deliveries_expected: col.expected,
    deliveries_received: col.received,
    duplicates: col.duplicates,
    delivery_ns: col.latencies,
    generator_cpu_pct: genPct,
    server_cpu_pct: srvPct,
    other_cpu_pct: Math.max(0, machPct - genPct - (srvPct || 0)),
    steal_cpu_pct: stealPct,
    loop_lag_p99_ms: lag.count ? Math.max(0, lag.percentile(99) / 1e6 - 5) : null,
    send_lag_p99_ms: sendLag.length ? p99(sendLag) / 1e6 : null,
    wall_s: wall,
    closes: col.closes
  }
  for (const c of clients) { if (c === slow) c.ws._socket.resume(); c.ws.close() }
  await Promise.race([
    Promise.all(clients.map((c) => new Promise((resolve) => {
      if (c.ws.readyState === WebSocket.CLOSED) resolve(); else c.ws.on('close', resolve)
    }))),
    sleep(2000)
  ])
  // Exit only once stdout is flushed (a pipe is asynchronous in Node).
  process.stdout.write(JSON.stringify(out), () => process.exit(0))
}

main().catch((err) => { console.error(err); process.exit(1) })
