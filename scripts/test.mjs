// Runs the ava tests against one local livekit-server: starts it, exports LKRTC_TEST_URL,
// LKRTC_TEST_API_KEY and LKRTC_TEST_API_SECRET, runs ava (arguments pass through) and stops it.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { start } from './livekit-server.mjs'

const server = await start({ logLevel: process.env.LKRTC_TEST_SERVER_LOG ?? 'info' })
console.log(`test server: ${server.url} (log ${server.log})`)

const ava = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url))
let current
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => current?.kill(signal))
}

function run(args) {
  current = spawn(process.execPath, [ava, ...args], {
    stdio: 'inherit',
    env: {
      ...process.env,
      LKRTC_TEST_URL: server.url,
      LKRTC_TEST_API_KEY: server.apiKey,
      LKRTC_TEST_API_SECRET: server.apiSecret,
    },
  })
  return new Promise((r) => current.once('exit', (code, signal) => r(code ?? (signal ? 1 : 0))))
}

// The whole suite: the network-lab tests run on their own after the rest, so that the CPU the
// other files use in parallel does not stand in for the bottleneck they measure.
const isLab = (f) => /^__test__\/network.*\.spec\.ts$/.test(f)
const args = process.argv.slice(2)
let code
if (args.length === 0) {
  const dir = fileURLToPath(new URL('../__test__/', import.meta.url))
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.spec.ts'))
    .map((f) => `__test__/${f}`)
  code = await run(files.filter((f) => !isLab(f)))
  // One lab file at a time: each runs its own server and namespaces.
  for (const lab of files.filter(isLab)) code = (await run([lab])) || code
} else {
  code = await run(args)
}
await server.stop()
process.exit(code)
