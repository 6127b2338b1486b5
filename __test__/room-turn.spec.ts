/**
 * TURN: two rooms that may use relayed candidates only (`iceTransportPolicy: 'relay'`) exchange
 * video through the embedded TURN server of a livekit-server of this file's own (UDP on
 * loopback), and the server reports both connections as TURN. Without a TURN server in the join
 * response, relay-only connecting fails with a typed error.
 */
import { readFileSync } from 'node:fs'

import test from 'ava'

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
import { once, roomName, sleep, testServer, stopTestServer } from './helpers/server.js'

interface TurnServer {
  url: string
  apiKey: string
  apiSecret: string
  turnPort: number
  log: string
  stop(): Promise<void>
}

let server: TurnServer | undefined

test.before(async () => {
  const path = '../scripts/livekit-server.mjs'
  const { start } = (await import(path)) as { start: (o: { turn: boolean }) => Promise<TurnServer> }
  server = await start({ turn: true })
})

test.after.always(async () => {
  await server?.stop()
  await stopTestServer()
})

const WIDTH = 320
const HEIGHT = 240

async function joinRelayed(identity: string, room: string): Promise<Room> {
  const lk = new Room()
  const token = await createToken({ apiKey: server!.apiKey, apiSecret: server!.apiSecret, identity, room })
  await lk.connect(server!.url, token, { iceTransportPolicy: 'relay' })
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
function loggedConnectionTypes(identity: string): string[] {
  const types: string[] = []
  for (const line of readFileSync(server!.log, 'utf8').split('\n')) {
    if (!line.includes(`"${identity}"`)) continue
    const m = /"connectionType": ?"([a-z]+)"/.exec(line)
    if (m) types.push(m[1])
  }
  return types
}

test.serial('a publisher and a subscriber on relay-only ICE exchange video through the TURN server', async (t) => {
  const room = roomName('turn')
  const alice = await joinRelayed('alice-relay', room)
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
    const token = await createToken({
      apiKey: server!.apiKey,
      apiSecret: server!.apiSecret,
      identity: 'bob-relay',
      room,
    })
    await bob.connect(server!.url, token, { iceTransportPolicy: 'relay' })
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
    () => loggedConnectionTypes('alice-relay').length > 0 && loggedConnectionTypes('bob-relay').length > 0,
    10_000,
  )
  t.deepEqual([...new Set(loggedConnectionTypes('alice-relay'))], ['turn'])
  t.deepEqual([...new Set(loggedConnectionTypes('bob-relay'))], ['turn'])
})

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
  t.regex(error!.message, /TURN server reachable over UDP/)
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
