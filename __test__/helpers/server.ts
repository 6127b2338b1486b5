/**
 * The livekit-server of a test run. `node scripts/test.mjs` starts one and exports
 * LKRTC_TEST_URL / LKRTC_TEST_API_KEY / LKRTC_TEST_API_SECRET; a test file run on its own
 * (`npx ava __test__/room-connect.spec.ts`) starts its own and stops it when done.
 */
import { createServer } from 'node:net'

import { createToken } from '../../lib/index.js'

export interface TestServer {
  url: string
  apiKey: string
  apiSecret: string
  stop(): Promise<void>
}

let started: Promise<TestServer> | undefined

export function testServer(): Promise<TestServer> {
  started ??= (async () => {
    const { LKRTC_TEST_URL: url, LKRTC_TEST_API_KEY: apiKey, LKRTC_TEST_API_SECRET: apiSecret } = process.env
    if (url && apiKey && apiSecret) return { url, apiKey, apiSecret, stop: async () => {} }
    const path = '../../scripts/livekit-server.mjs'
    const { start } = (await import(path)) as {
      start: () => Promise<TestServer>
    }
    return start()
  })()
  return started
}

/** Stops the server if this process started it. */
export async function stopTestServer(): Promise<void> {
  if (started) await (await started).stop()
}

let rooms = 0

/** A room name unique to this process and call. */
export function roomName(prefix: string): string {
  return `${prefix}-${process.pid}-${rooms++}`
}

export async function token(identity: string, room: string, extra: { name?: string } = {}): Promise<string> {
  const server = await testServer()
  return createToken({
    apiKey: server.apiKey,
    apiSecret: server.apiSecret,
    identity,
    room,
    name: extra.name ?? identity,
  })
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Resolves with the first `event` of `emitter` whose arguments satisfy `pred`. */
export function once<A extends unknown[]>(
  emitter: {
    on(event: string, listener: (...args: A) => void): unknown
    off(event: string, listener: (...args: A) => void): unknown
  },
  event: string,
  pred: (...args: A) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener)
      reject(new Error(`no ${event} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (...args: A) => {
      if (!pred(...args)) return
      clearTimeout(timer)
      emitter.off(event, listener)
      resolve(args)
    }
    emitter.on(event, listener)
  })
}

/** A TCP port on 127.0.0.1 that nobody listens on (it was free a moment ago). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => ok(port))
    })
  })
}
