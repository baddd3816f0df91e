// aedes (Node.js MQTT broker) for the benchmark table: `node aedes_server.js PORT`.
// Install with `npm install --prefix benchmarks/.work/node aedes`; run.py sets NODE_PATH.
'use strict'
const net = require('net')
const mod = require('aedes')
const aedes = typeof mod.createBroker === 'function' ? mod.createBroker() : mod()
const port = Number(process.argv[2] || 1883)
const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`))
process.on('SIGTERM', () => { server.close(); aedes.close(() => process.exit(0)) })
