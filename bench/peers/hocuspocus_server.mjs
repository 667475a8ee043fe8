// Hocuspocus peer for the side-by-side benchmark: the stock server, no
// extensions (no persistence: documents live in memory), quiet.
//   node bench/peers/hocuspocus_server.mjs --host 127.0.0.1 --port 8004
import { Server } from '@hocuspocus/server'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}

const server = new Server({
  address: arg('host', '127.0.0.1'),
  port: Number(arg('port', '8004')),
  quiet: true
})
await server.listen()
console.log(`hocuspocus listening on ${server.URL}`)
