// Runs the ava tests against one local livekit-server: starts it, exports LKRTC_TEST_URL,
// LKRTC_TEST_API_KEY and LKRTC_TEST_API_SECRET, runs ava (arguments pass through) and stops it.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { start } from './livekit-server.mjs'

const server = await start()
console.log(`test server: ${server.url} (log ${server.log})`)

const ava = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url))
const child = spawn(process.execPath, [ava, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    LKRTC_TEST_URL: server.url,
    LKRTC_TEST_API_KEY: server.apiKey,
    LKRTC_TEST_API_SECRET: server.apiSecret,
  },
})
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal))
}
const code = await new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 1 : 0))))
await server.stop()
process.exit(code)
