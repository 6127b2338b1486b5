/**
 * Reconnection through the TypeScript API, against a livekit-server of this file's own that is
 * killed mid-stream and started again on the same ports: both rooms rejoin, the publisher's track
 * is published again from the same source, and streams following the publisher or its track
 * carry on. The tests run one after another: each restarts the server.
 */
import test from 'ava'

import {
  ConnectionState,
  createToken,
  type LocalTrackPublication,
  LocalVideoTrack,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { classify, COLOURS, meanRgb, type Rgb, solidRgba } from './helpers/colors.js'
import { once, roomName, sleep } from './helpers/server.js'

interface RestartableServer {
  url: string
  apiKey: string
  apiSecret: string
  kill(): Promise<void>
  restart(): Promise<void>
  stop(): Promise<void>
}

let server: RestartableServer | undefined

test.before(async () => {
  const path = '../scripts/livekit-server.mjs'
  const { start } = (await import(path)) as { start: () => Promise<RestartableServer> }
  server = await start()
})

test.after.always(async () => {
  await server?.stop()
})

const WIDTH = 320
const HEIGHT = 240

async function join(identity: string, room: string): Promise<Room> {
  const lk = new Room()
  const token = await createToken({ apiKey: server!.apiKey, apiSecret: server!.apiSecret, identity, room })
  await lk.connect(server!.url, token)
  return lk
}

/** Resolves once `check()` holds, polling; rejects with `what` after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** `bob`, not yet connected, joins `room` and reads the first track it is given as RGBA, each
 * frame's colour into `seen`; resolves once 5 red frames came. */
async function watchFirstTrack(bob: Room, room: string) {
  const subscribed = once<[RemoteVideoTrack]>(bob, 'trackSubscribed', () => true, 15_000)
  const token = await createToken({ apiKey: server!.apiKey, apiSecret: server!.apiSecret, identity: 'bob', room })
  await bob.connect(server!.url, token)
  const [remote] = await subscribed
  const stream = new VideoStream(remote, { format: VideoBufferType.RGBA })
  const seen: (string | undefined)[] = []
  const reading = (async () => {
    for await (const { frame } of stream) seen.push(classify(meanRgb(frame.data, WIDTH, HEIGHT)))
  })()
  await until('red frames', () => seen.filter((c) => c === 'red').length >= 5, 15_000)
  return { remote, stream, seen, reading }
}

/** Resolves once `count` frames of `colour` came into `seen` after what it holds now. */
async function untilNewFrames(seen: (string | undefined)[], colour: string, count: number, timeoutMs: number) {
  const before = seen.length
  await until(
    `${colour} frames on the same stream`,
    () => seen.slice(before).filter((c) => c === colour).length >= count,
    timeoutMs,
  )
}

/** alice joins `room` and publishes 'camera' from a source fed one solid colour at 30 fps: red
 * until `show` changes it. `close` stops the feed, leaves and closes the source. */
async function publishColours(room: string) {
  const alice = await join('alice', room)
  const source = new VideoSource(WIDTH, HEIGHT)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  const publication = await alice.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    // The tests assert the size received: keep it whatever the bandwidth estimate does.
    degradationPreference: 'maintain-resolution',
  })
  let frame = solidRgba(WIDTH, HEIGHT, COLOURS.red)
  const feeder = setInterval(() => source.captureFrame(frame), 33)
  return {
    alice,
    track,
    publication,
    show(colour: Rgb) {
      frame = solidRgba(WIDTH, HEIGHT, colour)
    },
    async close() {
      clearInterval(feeder)
      await alice.disconnect()
      source.close()
    },
  }
}

/** Kills the server, runs `whileDown`, starts the server again on the same ports and waits until
 * every room in `rooms` has reconnected. */
async function restartServer(rooms: Room[], whileDown: () => void): Promise<void> {
  const rejoined = Promise.all(rooms.map((r) => once(r, 'reconnected', () => true, 45_000)))
  await server!.kill()
  whileDown()
  await sleep(500)
  await server!.restart()
  await rejoined
}

test.serial('a stream following a participant carries on across a server restart', async (t) => {
  const room = roomName('restart')
  const { alice, track, publication: before, show, close } = await publishColours(room)

  const bob = new Room()
  try {
    const token = await createToken({ apiKey: server!.apiKey, apiSecret: server!.apiSecret, identity: 'bob', room })
    await bob.connect(server!.url, token)
    if (!bob.remoteParticipants.has('alice')) {
      await once(bob, 'participantConnected', (p: { identity: string }) => p.identity === 'alice')
    }
    const aliceBefore = bob.remoteParticipants.get('alice')!
    const stream = VideoStream.fromParticipant({ participant: aliceBefore, format: VideoBufferType.RGBA })
    const seen: (string | undefined)[] = []
    const reading = (async () => {
      for await (const { frame } of stream) {
        t.is(frame.width, WIDTH)
        t.is(frame.height, HEIGHT)
        seen.push(classify(meanRgb(frame.data, WIDTH, HEIGHT)))
      }
    })()
    await until('red frames', () => seen.filter((c) => c === 'red').length >= 5, 15_000)

    const states: ConnectionState[] = []
    bob.on('connectionStateChanged', (state) => states.push(state))
    const republished = once<[LocalTrackPublication]>(alice, 'localTrackPublished', () => true, 60_000)
    await restartServer([alice, bob], () => show(COLOURS.blue))
    t.is(alice.connectionState, ConnectionState.Connected)
    t.is(bob.connectionState, ConnectionState.Connected)
    t.deepEqual(states.slice(0, 2), [ConnectionState.Reconnecting, ConnectionState.Connected])

    const [publication] = await republished
    t.not(publication.sid, before.sid, 'the restarted server gave the track a new sid')
    t.is(publication.name, 'camera')
    t.is(track.sid, publication.sid)
    t.true(alice.localParticipant.trackPublications.has(publication.sid))
    t.false(alice.localParticipant.trackPublications.has(before.sid))

    await untilNewFrames(seen, 'blue', 10, 40_000)
    t.false(stream.isClosed)
    const aliceAfter = bob.remoteParticipants.get('alice')
    t.truthy(aliceAfter)
    t.not(aliceAfter!.sid, aliceBefore.sid, 'alice rejoined as a new participant')
    const firstBlue = seen.indexOf('blue')
    t.true(seen.slice(0, firstBlue).includes('red') && !seen.slice(firstBlue).includes('red'), seen.join(','))
    await bob.disconnect()
    await reading
    t.true(stream.isClosed)
    t.is(stream.endReason, 'disconnected')
  } finally {
    await bob.disconnect()
    await close()
  }
})

test.serial('a stream on a track carries on with the track published again after a server restart', async (t) => {
  const room = roomName('restart-track')
  const { alice, show, close } = await publishColours(room)

  const bob = new Room()
  try {
    const { remote, stream, seen, reading } = await watchFirstTrack(bob, room)

    const resubscribed = once<[RemoteVideoTrack]>(bob, 'trackSubscribed', () => true, 60_000)
    await restartServer([alice, bob], () => show(COLOURS.blue))
    const [again] = await resubscribed
    t.true(remote.ended, 'the first track ended with the old session')
    t.not(again.sid, remote.sid)
    t.is(again.name, 'camera')

    await untilNewFrames(seen, 'blue', 10, 40_000)
    t.false(stream.isClosed)
    t.is(stream.endReason, undefined)

    // Outside a rejoin the stream ends with its track.
    const publication = [...alice.localParticipant.trackPublications.values()][0]
    await alice.localParticipant.unpublishTrack(publication.sid)
    await reading
    t.is(stream.endReason, 'unpublished')
  } finally {
    await bob.disconnect()
    await close()
  }
})

test.serial('a stream on a track carries on when the subscriber alone joins again', async (t) => {
  const room = roomName('sub-rejoin')
  const { show, close } = await publishColours(room)

  const bob = new Room()
  try {
    const { remote, stream, seen, reading } = await watchFirstTrack(bob, room)

    // The server drops bob's session alone; the publisher stays, so bob is given the same track
    // (same sid) when it joins again.
    const reconnected = once(bob, 'reconnected', () => true, 40_000)
    const resubscribed = once<[RemoteVideoTrack]>(bob, 'trackSubscribed', () => true, 40_000)
    bob.native!.simulateNodeFailure()
    await reconnected
    show(COLOURS.blue)
    const [again] = await resubscribed
    t.true(remote.ended, 'the first track ended with the old session')
    t.is(again.sid, remote.sid)

    await untilNewFrames(seen, 'blue', 10, 30_000)
    t.false(stream.isClosed)
    stream.close()
    await reading
  } finally {
    await bob.disconnect()
    await close()
  }
})
