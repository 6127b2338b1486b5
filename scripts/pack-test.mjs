// The pack test: what `npm install lkrtc` gives a user works with nothing else installed.
// Packs the main package and this platform's package (with the built addon), installs both
// into an empty temporary project without dev dependencies, and runs a program there that
// converts a frame and joins a room on a local livekit-server.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

import { start } from './livekit-server.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? '-gnu' : '-musl') : process.platform === 'win32' ? '-msvc' : ''}`
const addon = `${pkg.napi.binaryName}.${platform}.node`
const platformDir = join(ROOT, 'npm', platform)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
}

function pack(dir, into) {
  const out = run(npm, ['pack', '--json', '--pack-destination', into], dir)
  const [info] = JSON.parse(out)
  console.log(`packed ${info.filename}: ${info.entryCount} files, ${(info.size / 1e6).toFixed(2)} MB`)
  return join(into, info.filename)
}

const work = mkdtempSync(join(tmpdir(), 'lkrtc-pack-'))
const server = await start()
let failed = true
try {
  copyFileSync(join(ROOT, addon), join(platformDir, addon))
  const tarballs = [pack(ROOT, work), pack(platformDir, work)]
  const app = join(work, 'app')
  run('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'lkrtc-pack-test', private: true, version: '1.0.0' }))
  run(npm, ['install', '--omit=dev', '--no-audit', '--no-fund', '--no-package-lock', ...tarballs], app)
  writeFileSync(
    join(app, 'check.cjs'),
    `
const lk = require('lkrtc')
const assert = require('node:assert')
async function main() {
  const rgba = new lk.VideoFrame(4, 2, lk.VideoBufferType.RGBA, new Uint8Array(32).fill(200))
  const i420 = rgba.convert(lk.VideoBufferType.I420)
  assert.equal(i420.data.length, 4 * 2 + 2 * 2 * 1)
  assert.ok(Math.abs(i420.getPlane(0)[0] - 188) <= 2, 'Y of grey 200 is about 188')
  const token = lk.createToken({ apiKey: process.env.KEY, apiSecret: process.env.SECRET, identity: 'pack', room: 'pack-room' })
  const room = new lk.Room()
  await room.connect(process.env.URL, token)
  assert.equal(room.name, 'pack-room')
  assert.equal(room.localParticipant.identity, 'pack')
  await room.disconnect()
  console.log('installed package: frame converted, room joined and left')
}
main().catch((e) => { console.error(e); process.exit(1) })
`,
  )
  writeFileSync(
    join(app, 'check-esm.mjs'),
    `import { VideoFrame, VideoBufferType, Room, VideoStream, VideoSource, createToken } from 'lkrtc'
for (const [name, value] of Object.entries({ VideoFrame, VideoBufferType, Room, VideoStream, VideoSource, createToken })) {
  if (value === undefined) throw new Error(name + ' is not exported to ESM')
}
console.log('ESM named imports resolve')
`,
  )
  const esm = spawnSync(process.execPath, ['check-esm.mjs'], { cwd: app, stdio: 'inherit', timeout: 30_000 })
  if (esm.status !== 0) throw new Error('ESM import failed')
  const result = spawnSync(process.execPath, ['check.cjs'], {
    cwd: app,
    stdio: 'inherit',
    env: { ...process.env, URL: server.url, KEY: server.apiKey, SECRET: server.apiSecret },
    timeout: 60_000,
  })
  failed = result.status !== 0
} finally {
  rmSync(join(platformDir, addon), { force: true })
  await server.stop()
  rmSync(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
