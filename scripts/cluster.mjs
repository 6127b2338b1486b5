// A local LiveKit cluster for tests and trials: one Redis and livekit-server nodes that share it,
// all on loopback, each node on its own free ports (signal, RTC TCP, RTC UDP).
//
//   import { startCluster } from './cluster.mjs'
//   const cluster = await startCluster()   // { redis, nodes: [a, b], roomNode(room), stop() }
//   cluster.nodes[0].url                   // ws://127.0.0.1:<port>, and .id, .kill(), .restart()
//   ...
//   await cluster.stop()
//
// As a program: `node scripts/cluster.mjs [nodes]` runs one (two nodes by default) until Ctrl-C
// and prints the nodes' URLs.
//
// A room lives on one node (Redis maps its name to that node's id); a participant that connects
// through another node signals through it, relayed to the room's node over Redis, while its media
// goes straight to the room's node.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { API_KEY, API_SECRET, start } from './livekit-server.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const REDIS = 'redis-server'
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function freeTcpPort() {
  return new Promise((ok, fail) => {
    const server = createServer()
    server.once('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => ok(port))
    })
  })
}

/** Encodes one command in RESP, Redis's wire protocol. */
function encode(args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`
}

/** Parses one RESP reply at `at` of `buf`: [value, next offset], or undefined while incomplete.
 * Bulk strings come back as strings (the keys and ids read here are ASCII). */
function parse(buf, at = 0) {
  const eol = buf.indexOf('\r\n', at)
  if (eol < 0) return undefined
  const type = String.fromCharCode(buf[at])
  const line = buf.toString('latin1', at + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+':
      return [line, next]
    case '-':
      return [new Error(`redis: ${line}`), next]
    case ':':
      return [Number(line), next]
    case '$': {
      const n = Number(line)
      if (n < 0) return [null, next]
      if (buf.length < next + n + 2) return undefined
      return [buf.toString('utf8', next, next + n), next + n + 2]
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return [null, next]
      const items = []
      let pos = next
      for (let i = 0; i < n; i++) {
        const item = parse(buf, pos)
        if (!item) return undefined
        items.push(item[0])
        pos = item[1]
      }
      return [items, pos]
    }
    default:
      throw new Error(`redis: unexpected reply type ${JSON.stringify(type)}`)
  }
}

/** Runs one Redis command on its own connection and resolves with the reply. */
export function redisCommand(port, ...args) {
  return new Promise((ok, fail) => {
    const socket = connect({ host: '127.0.0.1', port })
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      fail(new Error(`redis: no reply to ${args[0]} within 5 s`))
    }, 5_000)
    socket.once('connect', () => socket.write(encode(args)))
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const reply = parse(buf)
      if (!reply) return
      clearTimeout(timer)
      socket.destroy()
      if (reply[0] instanceof Error) fail(reply[0])
      else ok(reply[0])
    })
    socket.once('error', (e) => {
      clearTimeout(timer)
      fail(e)
    })
  })
}

/**
 * Starts redis-server on a free loopback port, with no persistence (no RDB snapshots, no AOF),
 * and resolves once it answers PING. Its log goes to `target/livekit-server/redis-<port>.log`.
 */
export async function startRedis({ timeoutMs = 10_000 } = {}) {
  const port = await freeTcpPort()
  const dir = join(ROOT, 'target/livekit-server')
  mkdirSync(dir, { recursive: true })
  const log = join(dir, `redis-${port}.log`)
  const fd = openSync(log, 'w')
  const child = spawn(
    REDIS,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', fd, fd] },
  )
  closeSync(fd)
  let exited
  const exit = new Promise((r) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal }
      r(exited)
    }),
  )
  child.once('error', (e) => {
    exited = { error: e.code === 'ENOENT' ? `${REDIS} is missing: run \`bash scripts/bootstrap.sh\`` : e.message }
  })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited) throw new Error(`redis-server exited (${JSON.stringify(exited)}); see ${log}`)
    if ((await redisCommand(port, 'PING').catch(() => undefined)) === 'PONG') break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`redis-server did not answer within ${timeoutMs} ms; see ${log}`)
    }
    await sleep(50)
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    log,
    command: (...args) => redisCommand(port, ...args),
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exit
      clearTimeout(timer)
    },
  }
}

/**
 * Starts one Redis and `nodes` livekit-server nodes sharing it, and resolves once every node has
 * registered in Redis. Each node carries the id it registered under (`id`), which changes when
 * the node restarts; `roomNode(room)` tells which node hosts a room.
 */
export async function startCluster({ nodes: count = 2, logLevel = 'info', timeoutMs = 20_000 } = {}) {
  const redis = await startRedis()
  const seen = new Set()
  // A node registers under a fresh id each time it starts: the id that was not there before.
  const newNodeId = async () => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const ids = await redis.command('HKEYS', 'nodes')
      const fresh = ids.filter((id) => !seen.has(id))
      if (fresh.length === 1) {
        seen.add(fresh[0])
        return fresh[0]
      }
      if (fresh.length > 1) throw new Error(`more than one new node in Redis: ${fresh.join(', ')}`)
      if (Date.now() > deadline) throw new Error(`no new node registered in Redis within ${timeoutMs} ms`)
      await sleep(50)
    }
  }
  const nodes = []
  try {
    for (let i = 0; i < count; i++) {
      const server = await start({ redis: redis.address, logLevel, timeoutMs })
      let id
      try {
        id = await newNodeId()
      } catch (e) {
        await server.stop()
        throw e
      }
      nodes.push({
        url: server.url,
        apiKey: API_KEY,
        apiSecret: API_SECRET,
        port: server.port,
        tcpPort: server.tcpPort,
        udpPort: server.udpPort,
        log: server.log,
        get pid() {
          return server.pid
        },
        get id() {
          return id
        },
        stop: server.stop,
        /** SIGKILL: the node vanishes as in a crash; its rooms stay mapped to it in Redis. */
        kill: server.kill,
        /** Kills the node and starts it again on the same ports, under a new id, with no rooms. */
        async restart() {
          await server.restart()
          id = await newNodeId()
        },
      })
    }
  } catch (e) {
    for (const node of nodes) await node.stop()
    await redis.stop()
    throw e
  }
  return {
    redis,
    nodes,
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    /** The node hosting `room`: one of `nodes`, or undefined (no such room, or a node gone). */
    async roomNode(room) {
      const id = await redis.command('HGET', 'room_node_map', room)
      return nodes.find((n) => n.id === id)
    },
    /** Stops every node, then Redis. */
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()))
      await redis.stop()
    },
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isMain) {
  const count = Number(process.argv[2] ?? 2)
  if (!Number.isInteger(count) || count < 1) {
    console.error(`usage: node scripts/cluster.mjs [nodes]: nodes is a whole number >= 1, got ${process.argv[2]}`)
    process.exit(2)
  }
  const cluster = await startCluster({ nodes: count })
  console.log(`redis ${cluster.redis.address} (log ${cluster.redis.log})`)
  for (const node of cluster.nodes) {
    console.log(
      `livekit-server node ${node.id}: ${node.url} (rtc udp ${node.udpPort}, tcp ${node.tcpPort}, log ${node.log})`,
    )
  }
  console.log(`keys ${cluster.apiKey}: ${API_SECRET}; Ctrl-C stops the cluster`)
  const stop = async () => {
    await cluster.stop()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
