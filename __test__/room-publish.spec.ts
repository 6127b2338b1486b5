/**
 * lkrtc publishes, @livekit/rtc-node receives: against a real livekit-server.
 */
import { randomBytes } from 'node:crypto'

import test from 'ava'

import {
  ConnectionState,
  type LocalTrackPublication,
  LocalVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  type TrackPublishOptions,
} from '../lib/index.js'
import { GREY, inOrder, SEQUENCE, playSequence, solidRgba, stableRuns } from './helpers/colors.js'
import { CODECS, MIME, type PublishedCodec } from './helpers/codecs.js'
import { joinRtcNode, readColours, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const WIDTH = 640
const HEIGHT = 480

/** lkrtc joins `room` as `identity` and publishes a track named `name` (640x480 unless told), kept alive with grey frames. */
async function lkrtcPublisher(
  room: string,
  identity: string,
  codec: PublishedCodec,
  name = 'colours',
  options: TrackPublishOptions = {},
  [width, height] = [WIDTH, HEIGHT],
) {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room))
  const source = new VideoSource(width, height)
  const track = LocalVideoTrack.createVideoTrack(name, source)
  const localPublished = once<[LocalTrackPublication, LocalVideoTrack | undefined]>(lk, 'localTrackPublished')
  localPublished.catch(() => {}) // awaited by the tests that check it
  const publication = await lk.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoCodec: codec,
    videoEncoding: { maxBitrate: 1_500_000, maxFramerate: 15 },
    ...options,
  })
  const grey = solidRgba(width, height, GREY)
  let idle: NodeJS.Timeout | undefined = setInterval(() => source.captureFrame(grey), 66)
  const stopIdle = () => {
    if (idle) clearInterval(idle)
    idle = undefined
  }
  return { lk, source, track, publication, localPublished, stopIdle }
}

for (const codec of CODECS) {
  test.serial(`rtc-node receives every colour lkrtc publishes, in order (${codec})`, async (t) => {
    const name = roomName(`colours-${codec}`)
    const peer = await joinRtcNode(name, 'rtc-node-viewer')
    const subscribed = once<[rtc.RemoteTrack, rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(
      peer,
      rtc.RoomEvent.TrackSubscribed,
    )
    // The picture's size is asserted below: keep it whatever the bandwidth estimate does, in one
    // layer (the adaptation and simulcast have tests of their own).
    const { lk, source, stopIdle } = await lkrtcPublisher(name, 'lkrtc-colours', codec, 'colours', {
      degradationPreference: 'maintain-resolution',
      simulcast: false,
    })
    try {
      const [track, publication] = await subscribed
      t.is(publication.mimeType, MIME[codec])
      const reader = readColours(track)
      stopIdle()
      await playSequence((frame, timestampUs) => source.captureFrame(frame, { timestampUs }), {
        width: WIDTH,
        height: HEIGHT,
        fps: 15,
        secondsEach: 1,
      })
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(`${reader.names.length} frames received; stable runs: ${runs.join(' ')}`)
      t.deepEqual([...reader.sizes], [`${WIDTH}x${HEIGHT}`])
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
    } finally {
      stopIdle()
      await lk.disconnect()
      await peer.disconnect()
    }
  })
}

// H.264 codes even sizes only: an odd width or height loses its last column or row.
for (const [width, height] of [
  [641, 359],
  [321, 241],
  [1279, 720],
] as const) {
  test.serial(`rtc-node receives every colour of an odd-size H.264 track, ${width}x${height}`, async (t) => {
    const name = roomName(`odd-h264-${width}x${height}`)
    const peer = await joinRtcNode(name, 'rtc-node-viewer')
    const subscribed = once<[rtc.RemoteTrack, rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(
      peer,
      rtc.RoomEvent.TrackSubscribed,
    )
    const { lk, source, publication, stopIdle } = await lkrtcPublisher(
      name,
      'lkrtc-odd',
      'h264',
      'odd',
      {
        degradationPreference: 'maintain-resolution',
        simulcast: false,
        videoEncoding: { maxBitrate: 2_500_000, maxFramerate: 15 },
      },
      [width, height],
    )
    try {
      // The publication states the source's size, as rtc-node's own does.
      t.deepEqual([publication.width, publication.height], [width, height])
      const [track, remote] = await subscribed
      t.deepEqual([remote.width, remote.height], [width, height])
      const reader = readColours(track)
      stopIdle()
      await playSequence((frame, timestampUs) => source.captureFrame(frame, { timestampUs }), { width, height })
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(`${reader.names.length} frames received; stable runs: ${runs.join(' ')}`)
      t.deepEqual([...reader.sizes], [`${width & ~1}x${height & ~1}`])
      const stats = lk.localParticipant.publishStats(publication.sid)
      t.deepEqual([stats?.sentWidth, stats?.sentHeight], [width & ~1, height & ~1])
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
    } finally {
      stopIdle()
      await lk.disconnect()
      await peer.disconnect()
    }
  })
}

test.serial('rtc-node sees the lkrtc participant and its track: name, source, sid, dimensions', async (t) => {
  const name = roomName('track-info')
  const peer = await joinRtcNode(name, 'rtc-node-observer')
  const published = once<[rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(peer, rtc.RoomEvent.TrackPublished)
  const { lk, track, publication, localPublished, stopIdle } = await lkrtcPublisher(
    name,
    'lkrtc-camera',
    'vp8',
    'camera-640',
  )
  try {
    const [localPublication, localTrack] = await localPublished
    t.is(localPublication, publication)
    t.is(localTrack, track)
    t.is(track.sid, publication.sid)
    t.is(lk.localParticipant.trackPublications.get(publication.sid), publication)
    t.is(publication.mimeType, 'video/VP8')
    const [remote, participant] = await published
    t.is(participant.identity, 'lkrtc-camera')
    t.is(participant.sid, lk.localParticipant.sid)
    t.is(participant.name, 'lkrtc-camera')
    t.true(peer.remoteParticipants.has('lkrtc-camera'))
    t.is(remote.sid, publication.sid)
    t.true(publication.sid.startsWith('TR_'))
    t.is(remote.name, 'camera-640')
    t.is(remote.source, rtc.TrackSource.SOURCE_CAMERA)
    t.is(remote.kind, rtc.TrackKind.KIND_VIDEO)
    t.is(remote.width, WIDTH)
    t.is(remote.height, HEIGHT)
    t.is(publication.width, WIDTH)
    t.is(publication.height, HEIGHT)
    t.is(publication.name, 'camera-640')
  } finally {
    stopIdle()
    await lk.disconnect()
    await peer.disconnect()
  }
})

/** Publishes 640x480 noise (which no encoder can fit in 100 kbit/s) at 100 kbit/s with
 * `preference`; the sizes rtc-node decodes over `seconds`, and the size the publication reports
 * on both sides. */
async function publishStarved(preference: 'balanced' | 'maintain-resolution', seconds: number) {
  const name = roomName(`starved-${preference}`)
  const peer = await joinRtcNode(name, 'rtc-node-viewer')
  const subscribed = once<[rtc.RemoteTrack, rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(
    peer,
    rtc.RoomEvent.TrackSubscribed,
  )
  const { lk, source, publication, stopIdle } = await lkrtcPublisher(name, 'lkrtc-starved', 'vp8', 'starved', {
    videoEncoding: { maxBitrate: 100_000, maxFramerate: 15 },
    degradationPreference: preference,
    // The single-layer adaptation is under test; simulcast steps down by layers instead.
    simulcast: false,
  })
  const noise = Array.from(
    { length: 8 },
    () => new VideoFrame(WIDTH, HEIGHT, VideoBufferType.RGBA, randomBytes(WIDTH * HEIGHT * 4)),
  )
  let n = 0
  stopIdle()
  const feed = setInterval(() => source.captureFrame(noise[n++ % noise.length]), 66)
  try {
    const [track, remote] = await subscribed
    const reader = readColours(track)
    await new Promise((r) => setTimeout(r, seconds * 1000))
    await reader.stop()
    return {
      sizes: [...reader.sizes],
      frames: reader.names.length,
      published: `${publication.width}x${publication.height}`,
      remote: `${remote.width}x${remote.height}`,
    }
  } finally {
    clearInterval(feed)
    await lk.disconnect()
    await peer.disconnect()
  }
}

test.serial('a picture the bitrate cannot carry is sent smaller; the publication keeps the source size', async (t) => {
  const got = await publishStarved('balanced', 8)
  t.log(`sizes received: ${got.sizes.join(' ')} (${got.frames} frames)`)
  t.true(
    got.sizes.some((s) => s !== `${WIDTH}x${HEIGHT}`),
    `expected a smaller size among ${got.sizes.join(' ')}`,
  )
  t.is(got.published, `${WIDTH}x${HEIGHT}`)
  t.is(got.remote, `${WIDTH}x${HEIGHT}`)
})

test.serial("'maintain-resolution' keeps the source size at a bitrate too low for it", async (t) => {
  const got = await publishStarved('maintain-resolution', 8)
  t.log(`sizes received: ${got.sizes.join(' ')} (${got.frames} frames)`)
  t.true(got.frames > 0)
  t.deepEqual(got.sizes, [`${WIDTH}x${HEIGHT}`])
})

test.serial(
  'rtc-node sees lkrtc mute and unmute its track; the encoder pauses and restarts with a keyframe',
  async (t) => {
    const name = roomName('mute')
    const peer = await joinRtcNode(name, 'rtc-node-mute-observer')
    const subscribed = once<[rtc.RemoteTrack, rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(
      peer,
      rtc.RoomEvent.TrackSubscribed,
    )
    const { lk, track, publication, stopIdle } = await lkrtcPublisher(name, 'lkrtc-muter', 'vp8', 'colours', {
      simulcast: false,
    })
    const stats = () => lk.localParticipant.publishStats(publication.sid)
    try {
      const [, remote] = await subscribed
      t.false(remote.muted)
      while ((stats()?.framesEncoded ?? 0) < 5) await sleep(50)
      const muted = once<[rtc.TrackPublication, rtc.Participant]>(peer, rtc.RoomEvent.TrackMuted)
      track.mute()
      t.true(track.muted)
      const [mutedPublication, participant] = await muted
      t.is(mutedPublication.sid, publication.sid)
      t.is(participant.identity, 'lkrtc-muter')
      await sleep(300)
      const whileMuted = stats()
      await sleep(1000)
      // Frames kept coming from the source (the idle timer), none was encoded.
      t.is(stats()?.framesEncoded, whileMuted?.framesEncoded)
      t.true((stats()?.framesCaptured ?? 0) > (whileMuted?.framesCaptured ?? 0))
      const unmuted = once<[rtc.TrackPublication, rtc.Participant]>(peer, rtc.RoomEvent.TrackUnmuted)
      track.unmute()
      t.false(track.muted)
      t.is((await unmuted)[0].sid, publication.sid)
      while ((stats()?.framesEncoded ?? 0) <= (whileMuted?.framesEncoded ?? 0)) await sleep(50)
      t.true((stats()?.keyframesEncoded ?? 0) > (whileMuted?.keyframesEncoded ?? 0))
    } finally {
      stopIdle()
      await lk.disconnect()
      await peer.disconnect()
    }
  },
)

test.serial('a track muted before it is published is published muted', async (t) => {
  const name = roomName('mute-first')
  const peer = await joinRtcNode(name, 'rtc-node-mute-first')
  const published = once<[rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(peer, rtc.RoomEvent.TrackPublished)
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token('lkrtc-muted-first', name))
  try {
    const source = new VideoSource(WIDTH, HEIGHT)
    const track = LocalVideoTrack.createVideoTrack('muted', source)
    track.mute()
    const publication = await lk.localParticipant.publishTrack(track)
    // The server announces a track once its media starts: the encoder sends one frame, then
    // nothing while muted.
    const grey = solidRgba(WIDTH, HEIGHT, GREY)
    const idle = setInterval(() => source.captureFrame(grey), 66)
    try {
      const [remote] = await published
      t.is(remote.sid, publication.sid)
      t.true(remote.muted)
      await sleep(1000)
      // One frame per layer (a 640x480 source is sent in two).
      const stats = lk.localParticipant.publishStats(publication.sid)
      t.is(stats?.framesEncoded, stats?.layers.length)
      t.true((stats?.framesCaptured ?? 0) > 10)
    } finally {
      clearInterval(idle)
    }
  } finally {
    await lk.disconnect()
    await peer.disconnect()
  }
})

test.serial('rtc-node sees lkrtc unpublish its track', async (t) => {
  const name = roomName('unpublish')
  const peer = await joinRtcNode(name, 'rtc-node-observer')
  const published = once<[rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(peer, rtc.RoomEvent.TrackPublished)
  const { lk, publication, stopIdle } = await lkrtcPublisher(name, 'lkrtc-unpublisher', 'vp8')
  try {
    await published
    const unpublished = once<[rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(peer, rtc.RoomEvent.TrackUnpublished)
    const localUnpublished = once(lk, 'localTrackUnpublished')
    stopIdle()
    const result = await lk.localParticipant.unpublishTrack(publication.sid)
    t.is(result.sid, publication.sid)
    const [remote, participant] = await unpublished
    t.is(remote.sid, publication.sid)
    t.is(participant.identity, 'lkrtc-unpublisher')
    await localUnpublished
    t.false(lk.localParticipant.trackPublications.has(publication.sid))
    t.true(lk.isConnected)
  } finally {
    stopIdle()
    await lk.disconnect()
    await peer.disconnect()
  }
})

test.serial('rtc-node sees lkrtc disconnect; lkrtc reports disconnected with CLIENT_INITIATED', async (t) => {
  const name = roomName('disconnect')
  const peer = await joinRtcNode(name, 'rtc-node-observer')
  const joined = once<[rtc.RemoteParticipant]>(peer, rtc.RoomEvent.ParticipantConnected)
  const server = await testServer()
  const lk = new Room()
  const states: ConnectionState[] = []
  lk.on('connectionStateChanged', (state) => states.push(state))
  try {
    t.is(lk.connectionState, ConnectionState.Disconnected)
    await lk.connect(server.url, await token('lkrtc-leaver', name))
    t.is(lk.connectionState, ConnectionState.Connected)
    t.true(lk.isConnected)
    t.is(lk.name, name)
    const [participant] = await joinedOr(joined, peer, 'lkrtc-leaver')
    t.is(participant.identity, 'lkrtc-leaver')
    const left = once<[rtc.RemoteParticipant]>(peer, rtc.RoomEvent.ParticipantDisconnected)
    const reasons: string[] = []
    lk.on('disconnected', (reason) => reasons.push(reason))
    await lk.disconnect()
    t.deepEqual(reasons, ['CLIENT_INITIATED'])
    t.false(lk.isConnected)
    t.is(lk.connectionState, ConnectionState.Disconnected)
    t.is(states[0], ConnectionState.Connected)
    const [gone] = await left
    t.is(gone.identity, 'lkrtc-leaver')
    t.false(peer.remoteParticipants.has('lkrtc-leaver'))
  } finally {
    await lk.disconnect()
    await peer.disconnect()
  }
})

/** The participantConnected event, or the participant if rtc-node already knew it. */
async function joinedOr(
  event: Promise<[rtc.RemoteParticipant]>,
  peer: rtc.Room,
  identity: string,
): Promise<[rtc.RemoteParticipant]> {
  const known = peer.remoteParticipants.get(identity)
  return known ? [known] : event
}
