#!/usr/bin/env node
// One member of a consumer group, driven by KafkaJS 2: the same contract and
// output as py_group_member.py (see there).
//
//   node kafkajs_group_member.js --bootstrap HOST:PORT --group GROUP
//        --topic TOPIC --name NAME [--session-timeout-ms 6000] [--timeout 120]
//
// KafkaJS reports a completed join (GROUP_JOIN, with the member's whole
// assignment) and the start of a rebalance (REBALANCING, after which it
// gives up what it had): they become "assigned" and "revoked" lines.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const kafkajsVersion = require('kafkajs/package.json').version

function parseArgs (argv) {
  const args = { 'session-timeout-ms': 6000, timeout: 120 }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '')
    if (argv[i + 1] === undefined) throw new Error(`missing value for ${argv[i]}`)
    args[name] = argv[i + 1]
  }
  for (const required of ['bootstrap', 'group', 'topic', 'name']) {
    if (!args[required]) throw new Error(`--${required} is required`)
  }
  args['session-timeout-ms'] = Number(args['session-timeout-ms'])
  args.timeout = Number(args.timeout)
  return args
}

const args = parseArgs(process.argv.slice(2))
const now = () => performance.timeOrigin + performance.now()
const emit = (type, fields = {}) =>
  process.stdout.write(JSON.stringify({ ...fields, type, t: now(), name: args.name }) + '\n')
const log = (...a) => console.error(`kafkajs_group_member[${args.name}]:`, ...a)

const metadataFor = (partition, offset) => `p${partition} o${offset}`

async function main () {
  emit('client', { client: 'kafkajs', version: kafkajsVersion })
  const kafka = new Kafka({
    clientId: args.name,
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 100, retries: 30 }
  })
  const session = args['session-timeout-ms']
  const consumer = kafka.consumer({
    groupId: args.group,
    sessionTimeout: session,
    heartbeatInterval: Math.max(Math.floor(session / 3), 100),
    maxWaitTimeInMs: 100,
    retry: { initialRetryTime: 100, retries: 30 }
  })
  let owned = []
  consumer.on(consumer.events.GROUP_JOIN, e => {
    owned = (e.payload.memberAssignment[args.topic] || []).slice().sort((a, b) => a - b)
    emit('assigned', { partitions: owned })
  })
  consumer.on(consumer.events.REBALANCING, () => {
    emit('revoked', { partitions: owned })
    owned = []
  })
  consumer.on(consumer.events.CRASH, e => log('crash:', e.payload.error))

  let stopping = false
  const stop = async code => {
    if (stopping) return
    stopping = true
    emit('revoked', { partitions: owned })
    await consumer.disconnect()
    emit('closed')
    process.stdout.write('', () => process.exit(code))
  }
  let input = ''
  process.stdin.on('data', chunk => {
    input += chunk
    if (input.split('\n').some(l => l.trim() === 'stop')) stop(0)
  })
  process.stdin.on('end', () => stop(0))
  setTimeout(() => {
    log(`timed out after ${args.timeout}s`)
    process.exit(3)
  }, args.timeout * 1000).unref()

  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset)
      emit('record', {
        partition,
        offset,
        value: message.value === null ? '' : message.value.toString('utf8')
      })
      const next = offset + 1
      await consumer.commitOffsets([
        { topic: args.topic, partition, offset: String(next), metadata: metadataFor(partition, next) }
      ])
      emit('committed', { partition, offset: next })
    }
  })
}

main().catch(e => {
  log('failed:', e)
  process.exit(1)
})
