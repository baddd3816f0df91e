// aedes (Node.js MQTT broker) for the benchmark table: `node aedes_server.js PORT`.
// Install with `npm install --prefix benchmarks/.work/node aedes`; the harness sets NODE_PATH.
'use strict'
const net = require('net')
const mod = require('aedes')

async function main () {
  const port = Number(process.argv[2] || 1883)
  // aedes >= 1.0 builds brokers asynchronously; older releases export a factory function.
  const aedes = mod.Aedes ? await mod.Aedes.createBroker() : mod()
  const server = net.createServer(aedes.handle)
  server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`))
  process.on('SIGTERM', () => { server.close(); aedes.close(() => process.exit(0)) })
}

main()
