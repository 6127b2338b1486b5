/**
 * Data messages between participants, against a real livekit-server: lkrtc with lkrtc and with
 * @livekit/rtc-node, both ways.
 */
import { createHash, randomBytes } from 'node:crypto'

import test from 'ava'

import { DataPacketKind, type LkrtcError, type RemoteParticipant, Room } from '../lib/index.js'
import { joinRtcNode, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

type Data = [Uint8Array, RemoteParticipant | undefined, DataPacketKind, string | undefined]

async function join(room: string, identity: string): Promise<Room> {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room))
  return lk
}

/** `identities` joined to one fresh room, each seeing all the others. */
async function rooms(prefix: string, ...identities: string[]): Promise<Room[]> {
  const name = roomName(prefix)
  const joined: Room[] = []
  for (const identity of identities) joined.push(await join(name, identity))
  for (const r of joined) {
    while (r.remoteParticipants.size < identities.length - 1) await sleep(20)
  }
  return joined
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

test('a reliable message reaches another lkrtc participant with its bytes, sender and topic', async (t) => {
  const [alice, bob] = await rooms('data-reliable', 'alice', 'bob')
  try {
    const payload = randomBytes(10_000)
    const got = once<Data>(bob, 'dataReceived')
    await alice.localParticipant.publishData(payload, { topic: 'chat' })
    const [bytes, participant, kind, topic] = await got
    t.true(bytes instanceof Uint8Array)
    t.is(sha(bytes), sha(payload))
    t.is(participant?.identity, 'alice')
    t.is(kind, DataPacketKind.Reliable)
    t.is(topic, 'chat')
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('a lossy message arrives as lossy, without a topic when none was given', async (t) => {
  const [alice, bob] = await rooms('data-lossy', 'alice', 'bob')
  try {
    // Lossy can be lost by design; on loopback it is not, but send a few to be sure one lands.
    const got = once<Data>(bob, 'dataReceived')
    for (let i = 0; i < 5; i++) await alice.localParticipant.publishData(new Uint8Array([7, 7, i]), { reliable: false })
    const [bytes, participant, kind, topic] = await got
    t.deepEqual([...bytes.subarray(0, 2)], [7, 7])
    t.is(participant?.identity, 'alice')
    t.is(kind, DataPacketKind.Lossy)
    t.is(topic, undefined)
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('a string is sent as UTF-8', async (t) => {
  const [alice, bob] = await rooms('data-text', 'alice', 'bob')
  try {
    const got = once<Data>(bob, 'dataReceived')
    await alice.localParticipant.publishData('héllo ✓')
    const [bytes] = await got
    t.is(new TextDecoder().decode(bytes), 'héllo ✓')
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('a message for one participant reaches only that participant', async (t) => {
  const [alice, bob, carol] = await rooms('data-dest', 'alice', 'bob', 'carol')
  try {
    const carolGot: string[] = []
    carol.on('dataReceived', (bytes) => carolGot.push(new TextDecoder().decode(bytes)))
    const bobGot = once<Data>(bob, 'dataReceived')
    await alice.localParticipant.publishData('for bob', { destinationIdentities: ['bob'] })
    t.is(new TextDecoder().decode((await bobGot)[0]), 'for bob')
    // A message for everyone, sent after, reaches carol: had the first one reached her, it
    // would have come before it (reliable messages keep their order).
    const carolAll = once<Data>(carol, 'dataReceived', (b) => new TextDecoder().decode(b) === 'for all')
    await alice.localParticipant.publishData('for all')
    await carolAll
    t.deepEqual(carolGot, ['for all'])
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect(), carol.disconnect()])
  }
})

test('a burst of reliable messages larger than the link buffers arrives whole and in order', async (t) => {
  const [alice, bob] = await rooms('data-burst', 'alice', 'bob')
  try {
    const count = 96
    const size = 30_000
    const received: number[] = []
    let corrupt = 0
    const all = new Promise<void>((resolve) => {
      bob.on('dataReceived', (bytes) => {
        const n = bytes[0] | (bytes[1] << 8)
        if (bytes.length !== size || !bytes.subarray(2).every((b) => b === (n & 0xff))) corrupt++
        received.push(n)
        if (received.length === count) resolve()
      })
    })
    // Sent without awaiting each: 2.9 MB queued at once.
    const sends: Promise<void>[] = []
    for (let n = 0; n < count; n++) {
      const message = new Uint8Array(size).fill(n & 0xff)
      message[0] = n & 0xff
      message[1] = n >> 8
      sends.push(alice.localParticipant.publishData(message))
    }
    await Promise.all(sends)
    await Promise.race([all, sleep(20_000)])
    t.is(corrupt, 0)
    t.deepEqual(
      received,
      Array.from({ length: count }, (_, i) => i),
    )
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('past the send backlog a message is refused with ERR_DATA_BACKLOG and every accepted one arrives in order', async (t) => {
  const [alice, bob] = await rooms('data-backlog', 'alice', 'bob')
  try {
    const received: number[] = []
    bob.on('dataReceived', (bytes) => received.push(bytes[0] | (bytes[1] << 8)))
    // 12 MB at once: more than the 4 MiB that may wait.
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, n) => {
        const message = new Uint8Array(60_000)
        message[0] = n & 0xff
        message[1] = n >> 8
        return alice.localParticipant.publishData(message).then(
          () => n,
          (e: LkrtcError) => e.code,
        )
      }),
    )
    const accepted = outcomes.filter((o): o is number => typeof o === 'number')
    const refused = outcomes.filter((o) => typeof o !== 'number')
    t.log(`${accepted.length} accepted, ${refused.length} refused`)
    t.true(
      refused.every((code) => code === 'ERR_DATA_BACKLOG'),
      String(refused),
    )
    for (let i = 0; i < 500 && received.length < accepted.length; i++) await sleep(20)
    t.deepEqual(received, accepted)
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('the largest message arrives and one byte more is refused with ERR_INVALID_ARGUMENT', async (t) => {
  const [alice, bob] = await rooms('data-size', 'alice', 'bob')
  try {
    // 65,535 bytes per packet less the envelope (identity, kind, sequence): find the limit from the error.
    const err = await t.throwsAsync<LkrtcError>(alice.localParticipant.publishData(new Uint8Array(70_000)))
    t.is(err?.code, 'ERR_INVALID_ARGUMENT')
    const max = Number(/at most (\d+) bytes/.exec(err?.message ?? '')?.[1])
    t.true(max > 65_000 && max < 65_535, err?.message)
    const payload = randomBytes(max)
    const got = once<Data>(bob, 'dataReceived')
    await alice.localParticipant.publishData(payload)
    t.is(sha((await got)[0]), sha(payload))
    const over = await t.throwsAsync<LkrtcError>(alice.localParticipant.publishData(new Uint8Array(max + 1)))
    t.is(over?.code, 'ERR_INVALID_ARGUMENT')
  } finally {
    await Promise.all([alice.disconnect(), bob.disconnect()])
  }
})

test('publishData after the room disconnected rejects with ERR_NOT_CONNECTED', async (t) => {
  const [alice] = await rooms('data-closed', 'alice')
  await alice.disconnect()
  const err = await t.throwsAsync<LkrtcError>(alice.localParticipant.publishData('late'))
  t.is(err?.code, 'ERR_NOT_CONNECTED')
})

test('rtc-node receives what lkrtc sends, with sender, topic and kind', async (t) => {
  const name = roomName('data-to-rtc-node')
  const peer = await joinRtcNode(name, 'rtc-node')
  const lk = await join(name, 'lkrtc')
  try {
    while (peer.remoteParticipants.size < 1) await sleep(20)
    const payload = randomBytes(4_000)
    const got = once<
      [Uint8Array, rtc.RemoteParticipant | undefined, rtc.DataPacketKind | undefined, string | undefined]
    >(peer, rtc.RoomEvent.DataReceived)
    await lk.localParticipant.publishData(payload, { topic: 'telemetry' })
    const [bytes, participant, kind, topic] = await got
    t.is(sha(bytes), sha(payload))
    t.is(participant?.identity, 'lkrtc')
    t.is(kind, rtc.DataPacketKind.KIND_RELIABLE)
    t.is(topic, 'telemetry')
  } finally {
    await Promise.all([lk.disconnect(), peer.disconnect()])
  }
})

test('lkrtc receives what rtc-node sends, reliable and lossy', async (t) => {
  const name = roomName('data-from-rtc-node')
  const lk = await join(name, 'lkrtc')
  const peer = await joinRtcNode(name, 'rtc-node')
  try {
    while (lk.remoteParticipants.size < 1) await sleep(20)
    const payload = randomBytes(2_000)
    const reliable = once<Data>(lk, 'dataReceived')
    await peer.localParticipant?.publishData(payload, { reliable: true, topic: 'from-node' })
    const [bytes, participant, kind, topic] = await reliable
    t.is(sha(bytes), sha(payload))
    t.is(participant?.identity, 'rtc-node')
    t.is(kind, DataPacketKind.Reliable)
    t.is(topic, 'from-node')
    const lossy = once<Data>(lk, 'dataReceived', (_b, _p, k) => k === DataPacketKind.Lossy)
    for (let i = 0; i < 5; i++) await peer.localParticipant?.publishData(new Uint8Array([i]), { reliable: false })
    t.is((await lossy)[2], DataPacketKind.Lossy)
  } finally {
    await Promise.all([lk.disconnect(), peer.disconnect()])
  }
})
