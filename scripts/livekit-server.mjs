// A local livekit-server for tests and the demo: loopback only, free ports, the dev keys.
// Or inside a network namespace of the network lab (scripts/netlab.sh), on its addresses only.
//
//   import { start } from './livekit-server.mjs'
//   const server = await start()      // { url, apiKey, apiSecret, log, stop() }
//   const lab = await start({ netns: 'netlab1-srv', host: '10.77.1.1', ips: '10.77.0.0/16' })
//   const node = await start({ redis: '127.0.0.1:6379' })   // one node of a cluster (scripts/cluster.mjs)
//   const relay = await start({ turn: true })   // with its embedded TURN server on a UDP port
//   const other = await start({ turnServers: [{ host: '127.0.0.1', port: 3479, protocol: 'tcp',
//                                               username: 'u', credential: 'p' }] })  // rtc.turn_servers
//   ...
//   await server.stop()
//
// As a program: `node scripts/livekit-server.mjs` runs one until Ctrl-C and prints its URL.
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const BINARY = join(ROOT, '.tools/bin/livekit-server')
export const API_KEY = 'devkey'
export const API_SECRET = 'secret'

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

function freeUdpPort() {
  return new Promise((ok, fail) => {
    const socket = createSocket('udp4')
    socket.once('error', fail)
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address()
      socket.close(() => ok(port))
    })
  })
}

/** Whether a TCP connection to `port` is accepted (from inside `netns` when given). */
export function accepts(port, netns, host = '127.0.0.1') {
  if (netns) {
    // This process is outside the namespace: probe from inside it.
    return new Promise((ok) => {
      const probe = spawn('ip', ['netns', 'exec', netns, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], {
        stdio: 'ignore',
      })
      probe.once('exit', (code) => ok(code === 0))
      probe.once('error', () => ok(false))
    })
  }
  return new Promise((ok) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      ok(true)
    })
    socket.once('error', () => ok(false))
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The server's configuration: everything on 127.0.0.0/8 (or, in a lab namespace, on the
 * addresses in `ips`, listening on all of the namespace's addresses), the dev keys.
 * With `redis` (host:port), the server is one node of a cluster that shares that Redis. With
 * `turnPort`, its embedded TURN server listens on that UDP port of `host` (one address: a
 * wildcard socket would answer from whichever address routes back, which a TURN client
 * rightly ignores) and relays to peers on the server's own addresses, which TURN refuses by
 * default; the join response then lists it in
 * `ice_servers` with credentials. Without, no TURN. `turnServers` ({ host, port, protocol: 'udp' |
 * 'tcp' | 'tls', username, credential }) are other TURN servers the join response lists. */
export function config({ port, tcpPort, udpPort, logLevel = 'info', host, ips, redis, turnPort, turnServers }) {
  const lab = Boolean(ips)
  return `port: ${port}
bind_addresses: [${lab ? '0.0.0.0' : '127.0.0.1'}]
keys: { ${API_KEY}: ${API_SECRET} }
rtc:
  udp_port: ${udpPort}
  tcp_port: ${tcpPort}
  use_external_ip: false
  node_ip: ${host ?? '127.0.0.1'}
  enable_loopback_candidate: ${!lab}
  ips: { includes: [${ips ?? '127.0.0.1/32'}] }
  stun_servers: ["127.0.0.1:3478"]${
    turnServers?.length
      ? `\n  turn_servers:${turnServers
          .map(
            (s) =>
              `\n    - { host: '${s.host}', port: ${s.port}, protocol: ${s.protocol}, username: '${s.username}', credential: '${s.credential}' }`,
          )
          .join('')}`
      : ''
  }${
    process.env.LKRTC_SERVER_SEND_SIDE_BWE === '1'
      ? '\n  congestion_control: { enabled: true, use_send_side_bwe: true }'
      : ''
  }
${
  turnPort
    ? `turn:
  enabled: true
  udp_port: ${turnPort}
  bind_addresses: [${host ?? '127.0.0.1'}]
  allow_restricted_peer_cidrs: [${ips ?? '127.0.0.0/8'}]`
    : 'turn: { enabled: false }'
}
logging: { level: ${logLevel} }${redis ? `\nredis: { address: '${redis}' }` : ''}
`
}

/**
 * Starts livekit-server on free loopback ports and resolves once it accepts connections.
 * Its log goes to `target/livekit-server/livekit-<port>.log`. With `netns`, it runs inside that
 * network namespace (the lab's server namespace, which has no other tenant, so the ports are
 * LiveKit's usual 7880-7882), and `host` is the address clients dial and `ips` the range it
 * announces candidates in. With `redis` (host:port), it is one node of a cluster sharing that
 * Redis (scripts/cluster.mjs starts two of them and the Redis).
 */
export async function start({
  timeoutMs = 20_000,
  logLevel = 'info',
  netns,
  host,
  ips,
  redis,
  turn = false,
  turnServers,
} = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`livekit-server is missing at ${BINARY}: run \`bash scripts/bootstrap.sh\` first`)
  }
  const [port, tcpPort, udpPort] = netns
    ? [7880, 7881, 7882]
    : [await freeTcpPort(), await freeTcpPort(), await freeUdpPort()]
  // LiveKit's usual TURN port in a lab namespace.
  const turnPort = turn ? (netns ? 3478 : await freeUdpPort()) : undefined
  const dir = join(ROOT, 'target/livekit-server')
  mkdirSync(dir, { recursive: true })
  const name = netns ? `${netns}-${port}` : `${port}`
  const configPath = join(dir, `livekit-${name}.yaml`)
  writeFileSync(configPath, config({ port, tcpPort, udpPort, logLevel, host, ips, redis, turnPort, turnServers }))
  const log = join(dir, `livekit-${name}.log`)

  let child
  let exited
  let exit
  const launch = async (flags) => {
    const fd = openSync(log, flags)
    child = netns
      ? spawn('ip', ['netns', 'exec', netns, BINARY, '--config', configPath], { stdio: ['ignore', fd, fd] })
      : spawn(BINARY, ['--config', configPath], { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    exited = null
    exit = new Promise((r) =>
      child.once('exit', (code, signal) => {
        exited = { code, signal }
        r(exited)
      }),
    )
    child.once('error', (e) => {
      exited = { error: e }
    })
    const deadline = Date.now() + timeoutMs
    while (!(await accepts(port, netns, host))) {
      if (exited) throw new Error(`livekit-server exited (${JSON.stringify(exited)}); see ${log}`)
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`livekit-server did not accept connections within ${timeoutMs} ms; see ${log}`)
      }
      await sleep(50)
    }
  }
  await launch('w')

  const stop = async () => {
    if (exited) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exit
    clearTimeout(timer)
  }
  /** SIGKILL: the server vanishes without a word to anyone, as in a crash. */
  const kill = async () => {
    if (exited) return
    child.kill('SIGKILL')
    await exit
  }
  /** Kills the server and starts it again on the same ports, with no memory of its rooms. */
  const restart = async () => {
    await kill()
    await launch('a')
  }
  return {
    url: `ws://${host ?? '127.0.0.1'}:${port}`,
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    port,
    tcpPort,
    udpPort,
    turnPort,
    log,
    get pid() {
      return child.pid
    },
    stop,
    kill,
    restart,
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isMain) {
  const server = await start()
  console.log(`livekit-server ${server.url} (keys ${server.apiKey}: ${server.apiSecret}, log ${server.log})`)
  const stop = async () => {
    await server.stop()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
