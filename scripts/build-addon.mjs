#!/usr/bin/env node
// Builds the native addon (release unless --debug) and regenerates index.js / index.d.ts.
// Extra arguments go to `napi build` (e.g. --target x86_64-unknown-linux-gnu).
// On linux-gnu targets the C++ runtime of openh264 is linked statically (see build.rs).
import { spawnSync } from 'node:child_process'
import { arch, platform } from 'node:process'

const args = process.argv.slice(2)
const debug = args.includes('--debug')
const rest = args.filter((a) => a !== '--debug')
const targetIndex = rest.findIndex((a) => a === '--target' || a === '-t')
const glibc = platform === 'linux' && Boolean(process.report?.getReport().header.glibcVersionRuntime)
const hostGnu = glibc ? `${arch === 'arm64' ? 'aarch64' : 'x86_64'}-unknown-linux-gnu` : ''
const target = targetIndex >= 0 ? rest[targetIndex + 1] : hostGnu

const env = { ...process.env }
if (target.endsWith('-linux-gnu')) env[`CXXSTDLIB_${target.replaceAll('-', '_')}`] = ''

const napiArgs = [
  'napi',
  'build',
  '--platform',
  '--js',
  'index.js',
  '--dts',
  'index.d.ts',
  ...(debug ? [] : ['--release']),
  ...rest,
]
const result = spawnSync('npx', napiArgs, { stdio: 'inherit', env, shell: platform === 'win32' })
process.exit(result.status ?? 1)
