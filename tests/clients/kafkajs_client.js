#!/usr/bin/env node
// Produce a given set of records with KafkaJS, then read them back by
// explicit partition assignment and print what came back: the same contract
// and output as py_client.py (see there), for KafkaJS 2.
//
//   node kafkajs_client.js --bootstrap HOST:PORT --topic TOPIC --spec SPEC.json
//        [--partitions 3] [--create admin|auto] [--idempotence default|on|off]
//        [--compression default|none|gzip] [--timeout 60]
//        [--sasl MECHANISM:USER:PASSWORD] [--ssl CA_PEM[:CERT_PEM:KEY_PEM]]
//
// --sasl authenticates with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; --ssl
// connects over TLS trusting CA_PEM (with a client certificate when
// given): SASL_SSL with both.
//
// KafkaJS has no assign(): its consumer always joins a consumer group. So the
// read-back uses KafkaJS's own cluster and broker classes (what its consumer
// runs on underneath): Metadata to find each partition's leader, then Fetch
// requests sent to that leader from offset 0, decoded by KafkaJS, up to the
// high watermark from ListOffsets (admin.fetchTopicOffsets).
'use strict'

const fs = require('fs')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')
const Cluster = require('kafkajs/src/cluster')
const { createLogger } = require('kafkajs/src/loggers')
const LoggerConsole = require('kafkajs/src/loggers/console')
const defaultSocketFactory = require('kafkajs/src/network/socketFactory')
const kafkajsVersion = require('kafkajs/package.json').version

function parseArgs (argv) {
  const args = {
    partitions: 3,
    create: 'admin',
    idempotence: 'default',
    compression: 'default',
    timeout: 60
  }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '')
    if (argv[i + 1] === undefined) throw new Error(`missing value for ${argv[i]}`)
    args[name] = argv[i + 1]
  }
  for (const required of ['bootstrap', 'topic', 'spec']) {
    if (!args[required]) throw new Error(`--${required} is required`)
  }
  args.partitions = Number(args.partitions)
  args.timeout = Number(args.timeout)
  return args
}

const b64 = buf => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'))
const unb64 = text => (text === null ? null : Buffer.from(text, 'base64'))
// Output is collected and written once at the end (see finish): a large
// write to a pipe completes asynchronously, after process.exit would cut it.
const lines = []
const emit = obj => lines.push(JSON.stringify(obj) + '\n')
const log = (...a) => console.error('kafkajs_client:', ...a)

// KafkaJS headers are an object; a repeated key becomes an array of values.
function headersToObject (headers) {
  const obj = {}
  for (const [k, v] of headers) {
    const value = unb64(v)
    if (k in obj) {
      obj[k] = [].concat(obj[k], [value])
    } else {
      obj[k] = value
    }
  }
  return obj
}

function headersToPairs (headers) {
  const pairs = []
  for (const [k, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) pairs.push([k, b64(one)])
  }
  return pairs
}

function rounds (records) {
  const n = records.length
  const cuts = [0, Math.floor(n / 3), Math.floor((2 * n) / 3), n]
  const out = []
  for (let r = 0; r < 3; r++) {
    const round = []
    for (let i = cuts[r]; i < cuts[r + 1]; i++) round.push([i, records[i]])
    out.push(round)
  }
  return out
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const deadline = Date.now() + args.timeout * 1000
  const check = what => {
    if (Date.now() > deadline) throw new Error(`timed out ${what}`)
  }
  // A hard stop, whatever the client has pending.
  setTimeout(() => {
    log('watchdog: still running 10 s after the deadline; exiting')
    process.exit(3)
  }, (args.timeout + 10) * 1000).unref()

  const records = JSON.parse(fs.readFileSync(args.spec, 'utf8')).records
  emit({ type: 'client', client: 'kafkajs', version: kafkajsVersion })

  const config = {
    clientId: 'shardlog-test',
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 }
  }
  if (args.sasl) {
    const [mechanism, username, ...rest] = args.sasl.split(':')
    config.sasl = { mechanism: mechanism.toLowerCase(), username, password: rest.join(':') }
  }
  if (args.ssl) {
    const [ca, cert, key] = args.ssl.split(':')
    config.ssl = { ca: [fs.readFileSync(ca, 'utf8')], rejectUnauthorized: true }
    if (cert) {
      config.ssl.cert = fs.readFileSync(cert, 'utf8')
      config.ssl.key = fs.readFileSync(key, 'utf8')
    }
  }
  const kafka = new Kafka(config)
  const admin = kafka.admin()
  await admin.connect()

  if (args.create === 'admin') {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: args.topic, numPartitions: args.partitions, replicationFactor: 1 }]
    })
  }

  const producerConfig = {}
  if (args.idempotence !== 'default') {
    producerConfig.idempotent = args.idempotence === 'on'
    if (producerConfig.idempotent) producerConfig.maxInFlightRequests = 1
  }
  const compression = {
    default: CompressionTypes.None,
    none: CompressionTypes.None,
    gzip: CompressionTypes.GZIP
  }[args.compression]
  if (compression === undefined) throw new Error(`unsupported compression ${args.compression}`)

  const producer = kafka.producer(producerConfig)
  await producer.connect()
  for (const round of rounds(records)) {
    check('producing')
    // One send per round: KafkaJS sends one batch per partition per call,
    // and reports each partition's base offset.
    const messages = round.map(([, r]) => {
      const m = { partition: r.partition, key: unb64(r.key), value: unb64(r.value) }
      if (r.headers.length > 0) m.headers = headersToObject(r.headers)
      return m
    })
    const result = await producer.send({ topic: args.topic, messages, compression })
    const base = {}
    for (const meta of result) {
      if (meta.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(meta)}`)
      base[meta.partition] = Number(meta.baseOffset)
    }
    const next = {}
    for (const [index, r] of round) {
      const p = r.partition
      const offset = base[p] + (next[p] || 0)
      next[p] = (next[p] || 0) + 1
      emit({ type: 'delivered', index, partition: p, offset })
    }
  }
  await producer.disconnect()

  const offsets = await admin.fetchTopicOffsets(args.topic)
  const high = {}
  for (const o of offsets) {
    if (Number(o.partition) < args.partitions) high[o.partition] = Number(o.high)
  }
  for (let p = 0; p < args.partitions; p++) {
    if (high[p] === undefined) throw new Error(`no offsets for partition ${p}: ${JSON.stringify(offsets)}`)
    emit({ type: 'watermark', partition: p, low: Number(offsets.find(o => o.partition === p).low), high: high[p] })
  }
  await admin.disconnect()

  const cluster = new Cluster({
    logger: createLogger({ level: logLevel.WARN, logCreator: LoggerConsole }),
    socketFactory: defaultSocketFactory(),
    brokers: [args.bootstrap],
    clientId: 'shardlog-test-reader',
    ssl: config.ssl,
    sasl: config.sasl,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    enforceRequestTimeout: true,
    metadataMaxAge: 300000,
    allowAutoTopicCreation: false,
    retry: config.retry
  })
  await cluster.connect()
  await cluster.addTargetTopic(args.topic)
  await cluster.refreshMetadata()
  const partitions = [...Array(args.partitions).keys()]
  const leaders = cluster.findLeaderForPartitions(args.topic, partitions)
  const positions = {}
  for (const p of partitions) positions[p] = 0
  const out = []
  while (partitions.some(p => positions[p] < high[p])) {
    check(`reading back: positions ${JSON.stringify(positions)}, high ${JSON.stringify(high)}`)
    for (const [nodeId, owned] of Object.entries(leaders)) {
      const wanted = owned.filter(p => positions[p] < high[p])
      if (wanted.length === 0) continue
      const broker = await cluster.findBroker({ nodeId })
      const response = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 10 << 20,
        topics: [{
          topic: args.topic,
          partitions: wanted.map(p => ({ partition: p, fetchOffset: String(positions[p]), maxBytes: 1 << 20 }))
        }]
      })
      for (const t of response.responses) {
        for (const pd of t.partitions) {
          if (pd.errorCode !== 0) throw new Error(`fetch error ${pd.errorCode} on partition ${pd.partition}`)
          for (const m of pd.messages) {
            const offset = Number(m.offset)
            if (offset < positions[pd.partition] || m.isControlRecord) continue
            out.push({
              type: 'record',
              partition: pd.partition,
              offset,
              key: b64(m.key),
              value: b64(m.value),
              headers: headersToPairs(m.headers)
            })
            positions[pd.partition] = offset + 1
          }
        }
      }
    }
  }
  await cluster.disconnect()
  for (const line of out) emit(line)
  log(`ok: ${records.length} records produced, ${out.length} read back`)
}

function finish (code) {
  process.stdout.write(lines.join(''), () => process.exit(code))
}

main().then(
  () => finish(0),
  err => {
    log('failed:', err && err.stack ? err.stack : err)
    finish(1)
  }
)
