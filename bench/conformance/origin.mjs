// Starts the cache-tests suite's own origin server (SUITE/test-engine/server/server.mjs),
// listening on 127.0.0.1 only: the suite's server calls listen(port) with no host, which
// would bind every interface. The port (0 = a free one) comes from npm_config_port, as
// with `npm run server`; the server prints "Listening on http://127.0.0.1:PORT/".
// Usage: node origin.mjs SUITE_DIR
import net from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const suite = process.argv[2]
if (!suite) {
  console.error('usage: node origin.mjs SUITE_DIR')
  process.exit(2)
}

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const first = args[0]
  const portOnly = (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) &&
    (args.length === 1 || typeof args[1] === 'function')
  if (portOnly) return listen.call(this, Number(first), '127.0.0.1', ...args.slice(1))
  return listen.apply(this, args)
}

await import(pathToFileURL(path.resolve(suite, 'test-engine/server/server.mjs')).href)
