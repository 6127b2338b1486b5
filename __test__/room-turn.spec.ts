/**
 * TURN: two rooms that may use relayed candidates only (`iceTransportPolicy: 'relay'`) exchange
 * video through the embedded TURN server of a livekit-server of this file's own (UDP on
 * loopback), and the server reports both connections as TURN. Over TCP and TLS the TURN server is
 * coturn (Debian's `coturn`), listed to clients through livekit-server's `rtc.turn_servers`; those
 * tests skip when `turnserver` is not installed. Without a TURN server in the join response,
 * relay-only connecting fails with a typed error.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test, { type ExecutionContext } from 'ava'

import {
  createToken,
  LocalVideoTrack,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { classify, COLOURS, meanRgb, solidRgba } from './helpers/colors.js'
import { LOOPBACK, makePki } from './helpers/pki.js'
import { freePort, once, roomName, sleep, testServer, stopTestServer } from './helpers/server.js'

interface TurnServer {
  url: string
  apiKey: string
  apiSecret: string
  turnPort: number
  log: string
  stop(): Promise<void>
}

interface TurnServerEntry {
  host: string
  port: number
  protocol: 'udp' | 'tcp' | 'tls'
  username: string
  credential: string
}

let server: TurnServer | undefined

const COTURN = spawnSync('sh', ['-c', 'command -v turnserver'], { encoding: 'utf8' }).stdout.trim()
if (!COTURN) console.warn('TURN over TCP and TLS tests skipped: turnserver (coturn) is not installed')
const withCoturn = COTURN ? test.serial : test.serial.skip

/** coturn on loopback (TCP and TLS listeners), and a livekit-server that lists it for each. */
let coturn: { process: ChildProcess; dir: string; tcpPort: number; tlsPort: number; caPem: string } | undefined
const coturnServers: Partial<Record<'tcp' | 'tls', TurnServer>> = {}

/** Whether 127.0.0.1:`port` accepts a TCP connection (scripts/livekit-server.mjs). */
let accepts: (port: number) => Promise<boolean>

async function startCoturn() {
  const dir = mkdtempSync(join(tmpdir(), 'lkrtc-coturn-'))
  const pki = await makePki(LOOPBACK)
  writeFileSync(join(dir, 'cert.pem'), pki.chain)
  writeFileSync(join(dir, 'key.pem'), pki.key)
  const [tcpPort, tlsPort] = [await freePort(), await freePort()]
  const args = [
    '-n',
    '--no-cli',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${tcpPort}`,
    `--tls-listening-port=${tlsPort}`,
    `--cert=${join(dir, 'cert.pem')}`,
    `--pkey=${join(dir, 'key.pem')}`,
    '--no-dtls',
    '--lt-cred-mech',
    '--user=lkrtc:turn-secret',
    '--realm=lkrtc',
    '--allow-loopback-peers',
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--userdb=${join(dir, 'turndb')}`,
    `--log-file=${join(dir, 'turnserver.log')}`,
    '--simple-log',
    '--no-stdout-log',
  ]
  const process = spawn(COTURN, args, { stdio: 'ignore' })
  // Up once both listeners accept.
  const deadline = Date.now() + 10_000
  for (const port of [tcpPort, tlsPort]) {
    while (!(await accepts(port))) {
      if (Date.now() > deadline) throw new Error(`coturn did not listen on ${port}; see ${dir}/turnserver.log`)
      await sleep(50)
    }
  }
  return { process, dir, tcpPort, tlsPort, caPem: pki.caPem }
}

test.before(async () => {
  const path = '../scripts/livekit-server.mjs'
  const script = (await import(path)) as {
    start: (o: { turn?: boolean; turnServers?: TurnServerEntry[] }) => Promise<TurnServer>
    accepts: (port: number) => Promise<boolean>
  }
  const start = script.start
  accepts = script.accepts
  server = await start({ turn: true })
  if (COTURN) {
    coturn = await startCoturn()
    const entry = (protocol: 'tcp' | 'tls', port: number): TurnServerEntry => ({
      host: '127.0.0.1',
      port,
      protocol,
      username: 'lkrtc',
      credential: 'turn-secret',
    })
    // One livekit-server per transport, so that relay-only can only mean that transport.
    coturnServers.tcp = await start({ turnServers: [entry('tcp', coturn.tcpPort)] })
    coturnServers.tls = await start({ turnServers: [entry('tls', coturn.tlsPort)] })
  }
})

test.after.always(async () => {
  await server?.stop()
  await coturnServers.tcp?.stop()
  await coturnServers.tls?.stop()
  if (coturn) {
    const { process: child } = coturn
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    rmSync(coturn.dir, { recursive: true, force: true })
  }
  await stopTestServer()
})

const WIDTH = 320
const HEIGHT = 240

async function joinRelayed(via: TurnServer, identity: string, room: string, caCertificates?: string): Promise<Room> {
  const lk = new Room()
  const token = await createToken({ apiKey: via.apiKey, apiSecret: via.apiSecret, identity, room })
  await lk.connect(via.url, token, { iceTransportPolicy: 'relay', caCertificates })
  return lk
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** The connection types ("turn", "udp", "tcp") the server logged for `identity` once its
 * peer connections were up: the kind of the remote candidate of the selected pair. */
function loggedConnectionTypes(via: TurnServer, identity: string): string[] {
  const types: string[] = []
  for (const line of readFileSync(via.log, 'utf8').split('\n')) {
    if (!line.includes(`"${identity}"`)) continue
    const m = /"connectionType": ?"([a-z]+)"/.exec(line)
    if (m) types.push(m[1])
  }
  return types
}

/** alice publishes red, then green, and bob receives both colours, each joined through `via`
 * with relayed candidates only; the server then names both connections TURN. */
async function relayedCall(t: ExecutionContext, via: TurnServer, caCertificates?: string) {
  const room = roomName('turn')
  const alice = await joinRelayed(via, 'alice-relay', room, caCertificates)
  const source = new VideoSource(WIDTH, HEIGHT)
  let frame = solidRgba(WIDTH, HEIGHT, COLOURS.red)
  const feeder = setInterval(() => source.captureFrame(frame), 33)
  const bob = new Room()
  try {
    const track = LocalVideoTrack.createVideoTrack('camera', source)
    await alice.localParticipant.publishTrack(track, {
      source: TrackSource.Camera,
      degradationPreference: 'maintain-resolution',
    })
    const subscribed = once<[RemoteVideoTrack]>(bob, 'trackSubscribed', () => true, 20_000)
    const token = await createToken({ apiKey: via.apiKey, apiSecret: via.apiSecret, identity: 'bob-relay', room })
    await bob.connect(via.url, token, { iceTransportPolicy: 'relay', caCertificates })
    const [remote] = await subscribed
    const stream = new VideoStream(remote, { format: VideoBufferType.RGBA })
    const seen: (string | undefined)[] = []
    const reading = (async () => {
      for await (const { frame: f } of stream) {
        t.is(f.width, WIDTH)
        t.is(f.height, HEIGHT)
        seen.push(classify(meanRgb(f.data, WIDTH, HEIGHT)))
      }
    })()
    await until('red frames', () => seen.filter((c) => c === 'red').length >= 10, 20_000)
    frame = solidRgba(WIDTH, HEIGHT, COLOURS.green)
    const greenFrom = seen.length
    await until('green frames', () => seen.slice(greenFrom).filter((c) => c === 'green').length >= 10, 20_000)
    stream.close()
    await reading
  } finally {
    clearInterval(feeder)
    await bob.disconnect()
    await alice.disconnect()
    source.close()
  }
  // The server's view of the path: our relayed candidates on its selected pairs.
  await until(
    'the server to log both connection types',
    () => loggedConnectionTypes(via, 'alice-relay').length > 0 && loggedConnectionTypes(via, 'bob-relay').length > 0,
    10_000,
  )
  t.deepEqual([...new Set(loggedConnectionTypes(via, 'alice-relay'))], ['turn'])
  t.deepEqual([...new Set(loggedConnectionTypes(via, 'bob-relay'))], ['turn'])
}

test.serial('a publisher and a subscriber on relay-only ICE exchange video through the TURN server', async (t) => {
  await relayedCall(t, server!)
})

withCoturn(
  'a publisher and a subscriber on relay-only ICE exchange video through a TURN server over TCP',
  async (t) => {
    await relayedCall(t, coturnServers.tcp!)
  },
)

withCoturn(
  'a publisher and a subscriber on relay-only ICE exchange video through a TURN server over TLS',
  async (t) => {
    await relayedCall(t, coturnServers.tls!, coturn!.caPem)
  },
)

withCoturn(
  'relay-only ICE through a TLS TURN server whose certificate is not trusted fails and says why',
  async (t) => {
    // No caCertificates: the test CA that signed coturn's certificate is unknown.
    const via = coturnServers.tls!
    const token = await createToken({
      apiKey: via.apiKey,
      apiSecret: via.apiSecret,
      identity: 'eve',
      room: roomName('tls'),
    })
    const room = new Room()
    const error = await t.throwsAsync(room.connect(via.url, token, { iceTransportPolicy: 'relay' }))
    // The TLS handshake with the TURN server fails, and the error says so.
    t.is((error as Error & { code?: string }).code, 'ERR_TRANSPORT')
    t.regex(error!.message, /no TURN server has an allocation .*over Tls: .*invalid peer certificate: UnknownIssuer/)
    t.false(room.isConnected)
  },
)

test.serial('relay-only ICE without a TURN server in the join response fails with ERR_NO_TURN_SERVER', async (t) => {
  // The shared test server has no TURN.
  const plain = await testServer()
  const token = await createToken({
    apiKey: plain.apiKey,
    apiSecret: plain.apiSecret,
    identity: 'carol',
    room: roomName('no-turn'),
  })
  const room = new Room()
  const error = await t.throwsAsync(room.connect(plain.url, token, { iceTransportPolicy: 'relay' }))
  t.is((error as Error & { code?: string }).code, 'ERR_NO_TURN_SERVER')
  t.regex(error!.message, /needs a TURN server .* got stun:127.0.0.1:3478/)
  t.false(room.isConnected)
})

for (const [label, value, code] of [
  ['an unknown name', 'turn-only', 'ERR_INVALID_ARGUMENT'],
  ['upper case', 'RELAY', 'ERR_INVALID_ARGUMENT'],
  ['a number', 1, 'ERR_INVALID_ARG_TYPE'],
] as const) {
  test(`iceTransportPolicy as ${label} is refused before any I/O`, async (t) => {
    const room = new Room()
    const error = await t.throwsAsync(
      room.connect('ws://127.0.0.1:9', 'token', { iceTransportPolicy: value as unknown as 'relay' }),
    )
    t.is((error as Error & { code?: string }).code, code)
    t.regex(error!.message, /iceTransportPolicy: expected 'all' or 'relay'/)
  })
}
