/**
 * lkrtc against a LiveKit cluster of two nodes sharing one Redis (scripts/cluster.mjs), started by
 * this file: the room lives on node A; alice connects through A, bob through B, whose signal
 * connection B relays to A over Redis. Video flows both ways, and flows again when either node is
 * killed and started again (media to node A never passes through node B, so it carries on while
 * B is down). The tests run one after another.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

import test from 'ava'
import { RoomServiceClient } from 'livekit-server-sdk'

import {
  ConnectionState,
  createToken,
  LocalVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { classify, COLOURS, meanRgb, type Rgb, solidRgba } from './helpers/colors.js'
import { once, roomName, sleep } from './helpers/server.js'

interface ClusterNode {
  url: string
  id: string
  port: number
  udpPort: number
  log: string
  kill(): Promise<void>
  restart(): Promise<void>
}

interface Cluster {
  nodes: ClusterNode[]
  apiKey: string
  apiSecret: string
  roomNode(room: string): Promise<ClusterNode | undefined>
  stop(): Promise<void>
}

let cluster: Cluster | undefined

test.before(async () => {
  const path = '../scripts/cluster.mjs'
  const { startCluster } = (await import(path)) as { startCluster: () => Promise<Cluster> }
  cluster = await startCluster()
})

test.after.always(async () => {
  await cluster?.stop()
})

const WIDTH = 320
const HEIGHT = 240

const ms = (t: number) => `${Math.round(t)} ms`

/** Creates `room` on `node` (LiveKit's CreateRoom with a node id), so that which node hosts it
 * does not depend on the cluster's node selection. */
async function createRoomOn(room: string, node: ClusterNode): Promise<void> {
  const api = new RoomServiceClient(node.url.replace('ws:', 'http:'), cluster!.apiKey, cluster!.apiSecret)
  await api.createRoom({ name: room, nodeId: node.id })
}

async function join(identity: string, room: string, node: ClusterNode): Promise<Room> {
  const lk = new Room()
  const token = await createToken({ apiKey: cluster!.apiKey, apiSecret: cluster!.apiSecret, identity, room })
  await lk.connect(node.url, token)
  return lk
}

/** Publishes 'camera' on `room` from a source fed one solid colour at 30 fps, `colour` until
 * `show` changes it. */
async function publishColour(room: Room, colour: Rgb) {
  const source = new VideoSource(WIDTH, HEIGHT)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  await room.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    degradationPreference: 'maintain-resolution',
  })
  let frame = solidRgba(WIDTH, HEIGHT, colour)
  const feeder = setInterval(() => source.captureFrame(frame), 33)
  return {
    show(next: Rgb) {
      frame = solidRgba(WIDTH, HEIGHT, next)
    },
    close() {
      clearInterval(feeder)
      source.close()
    },
  }
}

/** Follows `identity`'s camera in `room` (across rejoins): the colour of every frame received
 * and when it came. */
async function watch(room: Room, identity: string) {
  if (!room.remoteParticipants.has(identity)) {
    await once(room, 'participantConnected', (p: { identity: string }) => p.identity === identity)
  }
  const stream = VideoStream.fromParticipant({
    participant: room.remoteParticipants.get(identity)!,
    format: VideoBufferType.RGBA,
  })
  const frames: { colour: string | undefined; at: number; size: string }[] = []
  // What the room reported about the participant, for the message of a failure.
  const started = performance.now()
  const trail: string[] = []
  const note = (what: string) => trail.push(`${ms(performance.now() - started)} ${what}`)
  const about = (p: { identity: string }) => p.identity === identity
  room.on('participantConnected', (p) => about(p) && note(`${identity} connected (${p.sid})`))
  room.on('participantDisconnected', (p) => about(p) && note(`${identity} disconnected`))
  room.on('trackSubscribed', (track, _, p) => about(p) && note(`subscribed ${track.sid}`))
  room.on('reconnecting', () => note('reconnecting'))
  room.on('reconnected', () => note('reconnected'))
  const reading = (async () => {
    for await (const { frame } of stream) {
      const colour = classify(meanRgb(frame.data, frame.width, frame.height))
      if (frames[frames.length - 1]?.colour !== colour || frames.length === 0) note(`frame ${colour}`)
      frames.push({ colour, at: performance.now(), size: `${frame.width}x${frame.height}` })
    }
    note(`stream ended: ${stream.endReason}`)
  })()
  return {
    frames,
    /** Resolves with the time of the `count`-th frame of `colour` after frame `from`. */
    async until(colour: string, count: number, timeoutMs: number, from = 0): Promise<number> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const matching = frames.slice(from).filter((f) => f.colour === colour)
        if (matching.length >= count) return matching[count - 1].at
        if (Date.now() > deadline) {
          throw new Error(
            `${count} ${colour} frames from ${identity} within ${timeoutMs} ms; saw ${colours(frames)}; ${trail.join(', ')}`,
          )
        }
        await sleep(50)
      }
    },
    async close() {
      stream.close()
      await reading
    },
  }
}

/** The colours of `frames`, runs collapsed: "red x40, blue x12". */
function colours(frames: { colour: string | undefined }[]): string {
  const runs: [string, number][] = []
  for (const { colour = '?' } of frames) {
    const last = runs[runs.length - 1]
    if (last?.[0] === colour) last[1]++
    else runs.push([colour, 1])
  }
  return runs.map(([c, n]) => `${c} x${n}`).join(', ')
}

/** The longest time between two frames of `frames` from `from` on. */
function longestGap(frames: { at: number }[], from: number): number {
  let gap = 0
  for (let i = Math.max(from, 1); i < frames.length; i++) gap = Math.max(gap, frames[i].at - frames[i - 1].at)
  return gap
}

/** The local TCP connections this process has established to `port` on loopback. */
function connectionsTo(port: number): number {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8' })
  return out.split('\n').filter((line) => line.includes(`pid=${process.pid},`)).length
}

/** Whether `node`'s log records an RTC session of `identity` in `room` (the node it lives on). */
function hostsSession(node: ClusterNode, room: string, identity: string): boolean {
  return readFileSync(node.log, 'utf8')
    .split('\n')
    .some(
      (l) =>
        l.includes('starting RTC session') &&
        l.includes(`"room": "${room}"`) &&
        l.includes(`"participant": "${identity}"`),
    )
}

/**
 * alice joins through node A, which hosts the room, bob through node B; each publishes one
 * colour and follows the other's camera. Resolves once both see the other's colour. `signal`
 * counts the TCP connections each join opened to each node's signal port.
 */
async function twoNodes(prefix: string) {
  const [a, b] = cluster!.nodes
  const room = roomName(prefix)
  await createRoomOn(room, a)
  const opened = async (connectTo: () => Promise<Room>) => {
    const before = [connectionsTo(a.port), connectionsTo(b.port)]
    const lk = await connectTo()
    return { room: lk, toA: connectionsTo(a.port) - before[0], toB: connectionsTo(b.port) - before[1] }
  }
  const { room: alice, ...aliceSignal } = await opened(() => join('alice', room, a))
  const { room: bob, ...bobSignal } = await opened(() => join('bob', room, b))
  const aliceCamera = await publishColour(alice, COLOURS.red)
  const bobCamera = await publishColour(bob, COLOURS.green)
  const aliceSees = await watch(alice, 'bob')
  const bobSees = await watch(bob, 'alice')
  await bobSees.until('red', 5, 20_000)
  await aliceSees.until('green', 5, 20_000)
  return {
    room,
    alice,
    bob,
    signal: { alice: aliceSignal, bob: bobSignal },
    aliceCamera,
    bobCamera,
    aliceSees,
    bobSees,
    async close() {
      await Promise.all([aliceSees.close(), bobSees.close()])
      await Promise.all([alice.disconnect(), bob.disconnect()])
      aliceCamera.close()
      bobCamera.close()
    },
  }
}

test.serial('video flows both ways between participants connected through different nodes', async (t) => {
  const [a, b] = cluster!.nodes
  const call = await twoNodes('cluster')
  try {
    t.is((await cluster!.roomNode(call.room))?.id, a.id, 'the room lives on node A')
    // bob signals through node B only, which relays his signal to the room's node A: his session
    // lives there, with its transports (node A's ICE candidates).
    t.deepEqual(call.signal.alice, { toA: 1, toB: 0 }, 'alice connected to node A')
    t.deepEqual(call.signal.bob, { toA: 0, toB: 1 }, 'bob connected to node B, not to A')
    t.true(hostsSession(a, call.room, 'bob'), "bob's session lives on node A")
    t.false(hostsSession(b, call.room, 'bob'), 'node B only relays it')
    t.true(call.alice.remoteParticipants.has('bob'))
    t.true(call.bob.remoteParticipants.has('alice'))
    for (const frames of [call.aliceSees.frames, call.bobSees.frames]) {
      t.deepEqual([...new Set(frames.map((f) => f.size))], [`${WIDTH}x${HEIGHT}`])
    }
    t.false(
      call.bobSees.frames.some((f) => f.colour === 'green'),
      'bob receives alice, not his own video',
    )
    t.false(
      call.aliceSees.frames.some((f) => f.colour === 'red'),
      'alice receives bob, not her own video',
    )
  } finally {
    await call.close()
  }
})

test.serial('after the node hosting the room restarts, both rejoin and video flows both ways again', async (t) => {
  const [a] = cluster!.nodes
  const call = await twoNodes('cluster-restart-room')
  try {
    const rejoined = Promise.all(
      [call.alice, call.bob].map((r) => once(r, 'reconnected', () => true, 60_000).then(() => performance.now())),
    )
    // When each noticed: alice's signal connection to node A closes at once; bob's to node B
    // stays open, and only his media path tells him node A is gone.
    const noticed = Promise.all(
      [call.alice, call.bob].map((r) => once(r, 'reconnecting', () => true, 60_000).then(() => performance.now())),
    )
    const aliceFrom = call.aliceSees.frames.length
    const bobFrom = call.bobSees.frames.length
    const killedAt = performance.now()
    await a.kill()
    call.aliceCamera.show(COLOURS.blue)
    call.bobCamera.show(COLOURS.white)
    await sleep(500)
    await a.restart()
    const restartedAt = performance.now()
    const [aliceBack, bobBack] = await rejoined
    const [aliceNoticed, bobNoticed] = await noticed
    const [bobSeesBlue, aliceSeesWhite] = await Promise.all([
      call.bobSees.until('blue', 10, 40_000, bobFrom),
      call.aliceSees.until('white', 10, 40_000, aliceFrom),
    ])
    const host = await cluster!.roomNode(call.room)
    t.truthy(host, 'the room lives on a node of the cluster again')
    t.log(
      `alice noticed ${ms(aliceNoticed - killedAt)} after the kill, bob ${ms(bobNoticed - killedAt)}; room rehosted on node ${host === a ? 'A' : 'B'}; after node A restarted (${ms(restartedAt - killedAt)} after the kill): alice back in ${ms(aliceBack - restartedAt)}, bob in ${ms(bobBack - restartedAt)}, video both ways in ${ms(Math.max(bobSeesBlue, aliceSeesWhite) - restartedAt)} (${ms(Math.max(bobSeesBlue, aliceSeesWhite) - killedAt)} after the kill)`,
    )
    // Neither side went back to the old colour once the new one came.
    for (const [seen, from, next, old] of [
      [call.bobSees.frames, bobFrom, 'blue', 'red'],
      [call.aliceSees.frames, aliceFrom, 'white', 'green'],
    ] as const) {
      const after = seen.slice(from)
      const first = after.findIndex((f) => f.colour === next)
      t.false(
        after.slice(first).some((f) => f.colour === old),
        colours(after),
      )
    }
    t.true(call.alice.isConnected && call.bob.isConnected)
  } finally {
    await call.close()
  }
})

test.serial(
  'while the node relaying the subscriber restarts, media flows on and the subscriber comes back through it',
  async (t) => {
    const [a, b] = cluster!.nodes
    const call = await twoNodes('cluster-restart-relay')
    try {
      const bobBack = once(call.bob, 'reconnected', () => true, 60_000).then(() => performance.now())
      const aliceFrom = call.aliceSees.frames.length
      const bobFrom = call.bobSees.frames.length
      let aliceReconnected = false
      call.alice.on('reconnecting', () => {
        aliceReconnected = true
      })
      const bobAsAliceSawHim = call.alice.remoteParticipants.get('bob')!.sid

      await b.kill()
      const killedAt = performance.now()
      call.aliceCamera.show(COLOURS.blue)
      call.bobCamera.show(COLOURS.white)
      // Media does not pass through node B: alice's new colour reaches bob while B is down.
      await call.bobSees.until('blue', 10, 10_000, bobFrom)
      await call.aliceSees.until('white', 10, 10_000, aliceFrom)
      await b.restart()
      const restartedAt = performance.now()
      const back = await bobBack
      t.is(connectionsTo(b.port), 1, 'bob signals through node B again')

      // Video flows on once bob is back: one more colour each way.
      const aliceAgain = call.aliceSees.frames.length
      const bobAgain = call.bobSees.frames.length
      call.aliceCamera.show(COLOURS.red)
      call.bobCamera.show(COLOURS.green)
      await Promise.all([
        call.bobSees.until('red', 10, 20_000, bobAgain),
        call.aliceSees.until('green', 10, 20_000, aliceAgain),
      ])
      t.is((await cluster!.roomNode(call.room))?.id, a.id, 'the room stayed on node A')
      t.false(aliceReconnected, 'alice, on node A, stayed connected')
      // lkrtc rejoins once a resume attempt has failed, and the first one meets node B down.
      const how = call.alice.remoteParticipants.get('bob')?.sid === bobAsAliceSawHim ? 'resumed' : 'rejoined'
      t.log(
        `node B down ${ms(restartedAt - killedAt)}; bob ${how} ${ms(back - restartedAt)} after its restart; longest gap in frames: alice->bob ${ms(longestGap(call.bobSees.frames, bobFrom))}, bob->alice ${ms(longestGap(call.aliceSees.frames, aliceFrom))}`,
      )
    } finally {
      await call.close()
    }
  },
)

test.serial(
  "when the room's node stays down, a participant connected through the other node rejoins the room there",
  async (t) => {
    const [a, b] = cluster!.nodes
    const call = await twoNodes('cluster-node-down')
    const carolCamera: { close(): void }[] = []
    let carol: Room | undefined
    try {
      const bobBack = once(call.bob, 'reconnected', () => true, 60_000).then(() => performance.now())
      await a.kill()
      const killedAt = performance.now()
      call.bobCamera.show(COLOURS.white)
      const back = await bobBack
      t.is((await cluster!.roomNode(call.room))?.id, b.id, 'the room lives on node B now')
      // alice's URL is node A's: she keeps trying it.
      t.is(call.alice.connectionState, ConnectionState.Reconnecting)

      // carol joins through node B and publishes; bob and carol see each other.
      carol = await join('carol', call.room, b)
      carolCamera.push(await publishColour(carol, COLOURS.blue))
      const carolSees = await watch(carol, 'bob')
      const bobSeesCarol = await watch(call.bob, 'carol')
      try {
        await Promise.all([bobSeesCarol.until('blue', 10, 20_000), carolSees.until('white', 10, 20_000)])
      } finally {
        await Promise.all([bobSeesCarol.close(), carolSees.close()])
      }
      t.false(call.bob.remoteParticipants.has('alice'), 'alice is not in the room re-created on node B')
      t.log(`bob back ${ms(back - killedAt)} after node A went down, in the room re-created on node B`)
    } finally {
      await call.close()
      await carol?.disconnect()
      for (const camera of carolCamera) camera.close()
      await a.restart()
    }
  },
)
