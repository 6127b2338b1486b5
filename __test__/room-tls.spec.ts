/**
 * `wss://` for real: a TLS-terminating proxy (`node:tls`) on loopback in front of the test
 * livekit-server, with a CA and a server certificate made at test time. Only signalling goes
 * through the proxy; media goes to the server directly. The CA is trusted with `caCertificates`.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls'

import test from 'ava'

import { LocalVideoTrack, Room, VideoBufferType, VideoSource, VideoStream, type LkrtcError } from '../lib/index.js'
import { classify, COLOURS, meanRgb, solidRgba } from './helpers/colors.js'
import { LOOPBACK, makePki, type Pki } from './helpers/pki.js'
import { once, roomName, stopTestServer, testServer, token } from './helpers/server.js'

/** Accepts TLS on a free loopback port and forwards the plaintext to `upstreamPort`. */
async function tlsProxy(
  pki: Pki,
  upstreamPort: number,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: TlsServer = createTlsServer({ cert: pki.chain, key: pki.key }, (tls) => {
    const upstream = tcpConnect({ host: '127.0.0.1', port: upstreamPort })
    sockets.add(tls).add(upstream)
    tls.pipe(upstream).pipe(tls)
    const end = () => {
      tls.destroy()
      upstream.destroy()
    }
    tls.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  // A client that refuses the certificate aborts the handshake: expected here.
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `wss://127.0.0.1:${port}`,
    port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

/** The test server's plain HTTP port. */
async function serverPort(): Promise<number> {
  return Number(new URL((await testServer()).url).port)
}

async function failedConnect(url: string, tok: string, options = {}): Promise<LkrtcError> {
  const room = new Room()
  try {
    await room.connect(url, tok, options)
  } catch (error) {
    return error as LkrtcError
  } finally {
    await room.disconnect()
  }
  throw new Error('connect resolved')
}

test.after.always(async () => {
  await stopTestServer()
})

test('connect over wss:// succeeds when the server certificate’s CA is given in caCertificates', async (t) => {
  const pki = await makePki(LOOPBACK)
  const proxy = await tlsProxy(pki, await serverPort())
  const name = roomName('tls')
  const room = new Room()
  try {
    await room.connect(proxy.url, await token('alice', name), { caCertificates: pki.caPem })
    t.true(room.isConnected)
    t.is(room.name, name)
    t.is(room.localParticipant.identity, 'alice')
  } finally {
    await room.disconnect()
    await proxy.close()
  }
})

test('connect over wss:// without caCertificates rejects with ERR_TLS saying the issuer is untrusted', async (t) => {
  const pki = await makePki(LOOPBACK)
  const proxy = await tlsProxy(pki, await serverPort())
  try {
    const tok = await token('alice', roomName('tls'))
    const error = await failedConnect(proxy.url, tok)
    t.is(error.code, 'ERR_TLS', error.message)
    t.regex(error.message, /not signed by a trusted certificate authority/)
    t.true(error.message.includes(`127.0.0.1:${proxy.port}`), error.message)
    t.false(error.message.includes(tok), 'the message must not carry the token')
  } finally {
    await proxy.close()
  }
})

test('connect over wss:// to a certificate for another host name rejects with ERR_TLS naming the host', async (t) => {
  const pki = await makePki([{ type: 2, value: 'livekit.example.com' }])
  const proxy = await tlsProxy(pki, await serverPort())
  try {
    const error = await failedConnect(proxy.url, await token('alice', roomName('tls')), { caCertificates: pki.caPem })
    t.is(error.code, 'ERR_TLS', error.message)
    t.regex(error.message, /not valid for the host name "127\.0\.0\.1"/)
  } finally {
    await proxy.close()
  }
})

test('caCertificates that hold no PEM certificate reject with ERR_INVALID_CERTIFICATE saying what was expected', async (t) => {
  const error = await failedConnect('wss://127.0.0.1:1', 'x', { caCertificates: 'not a certificate' })
  t.is(error.code, 'ERR_INVALID_CERTIFICATE', error.message)
  t.regex(error.message, /expected PEM text with one or more "-----BEGIN CERTIFICATE-----" sections/)
})

test('caCertificates of another type reject with ERR_INVALID_ARG_TYPE', async (t) => {
  const error = await failedConnect('wss://127.0.0.1:1', 'x', { caCertificates: Buffer.from('pem') as never })
  t.is(error.code, 'ERR_INVALID_ARG_TYPE', error.message)
  t.regex(error.message, /invalid caCertificates: expected a string, got an instance of Buffer/)
})

test('video published by a participant joined over wss:// reaches another participant', async (t) => {
  const pki = await makePki(LOOPBACK)
  const server = await testServer()
  const proxy = await tlsProxy(pki, await serverPort())
  const name = roomName('tls-media')
  const viewer = new Room()
  const sender = new Room()
  const source = new VideoSource(160, 120)
  let timer: NodeJS.Timeout | undefined
  try {
    await viewer.connect(server.url, await token('viewer', name))
    await sender.connect(proxy.url, await token('sender', name), { caCertificates: pki.caPem })
    const subscribed = once<[import('../lib/index.js').RemoteVideoTrack]>(viewer, 'trackSubscribed')
    await sender.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('camera', source))
    const blue = solidRgba(160, 120, COLOURS.blue)
    timer = setInterval(() => source.captureFrame(blue), 66)
    const [track] = await subscribed
    const stream = new VideoStream(track, { format: VideoBufferType.RGBA })
    let colour: string | undefined
    let frames = 0
    for await (const { frame } of stream) {
      colour = classify(meanRgb(frame.data, frame.width, frame.height))
      if (colour || ++frames >= 60) break
    }
    t.is(colour, 'blue')
  } finally {
    clearInterval(timer)
    await sender.disconnect()
    await viewer.disconnect()
    source.close()
    await proxy.close()
  }
})
