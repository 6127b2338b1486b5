// The network lab from TypeScript, for the network benchmark (net.ts) and the network tests:
// namespaces and shaping (scripts/netlab.sh), livekit-server inside the server namespace, and
// benchmark/e2e-peer.ts participants inside the client namespaces.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join, resolve } from 'node:path'

const ROOT = resolve(__dirname, '..')
const NETLAB = join(ROOT, 'scripts/netlab.sh')

/** Why the lab cannot run here, or undefined when it can: it needs root, ip, tc and nft. */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  // The system's directories only: `npm run` puts node_modules/.bin first on PATH, where a
  // development dependency installs an unrelated `nft`.
  const env = { ...process.env, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' }
  for (const tool of ['unshare', 'ip', 'tc', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status !== 0) return `${tool} is not installed`
  }
  if (!spawnSync('nft', ['--version'], { env, encoding: 'utf8' }).stdout?.includes('nftables')) {
    return 'nft is not nftables'
  }
  return undefined
}

export type Link = 'pub' | 'sub' | 'sub2'
export type Direction = 'up' | 'down'
/** A netlab.sh command without the lab id, e.g. ['rate', 'pub', 'up', '1000']. */
export type Action = string[]

export const rate = (link: Link, dir: Direction, kbit: number): Action => ['rate', link, dir, String(kbit)]
export const loss = (link: Link, dir: Direction, pct: number): Action => ['loss', link, dir, String(pct)]
export const udp = (blocked: boolean): Action => ['udp', blocked ? 'block' : 'allow']
/** Blocks the clients' direct media paths to the server (UDP but to its TURN port, ICE-TCP). */
export const direct = (blocked: boolean): Action => ['direct', blocked ? 'block' : 'allow']
/** `f` for both directions of both links. */
export const everyDirection = (f: (link: Link, dir: Direction) => Action): Action[] =>
  (['pub', 'sub'] as const).flatMap((link) => (['up', 'down'] as const).map((dir) => f(link, dir)))
/** The same cap on every direction (0: none). */
export const cap = (kbit: number): Action[] => everyDirection((l, d) => rate(l, d, kbit))

/** The addresses the publisher and the subscriber dial livekit-server at. */
export const URLS = { pub: 'ws://10.77.1.1:7880', sub: 'ws://10.77.2.1:7880', sub2: 'ws://10.77.3.1:7880' }

/** A lab id for this process: `NET_LAB_ID` (a prefix for the namespaces, so that labs run side
 * by side can be told apart) or `netlab`, then `role` and the process id. */
export function labId(role: string): string {
  return `${process.env.NET_LAB_ID ?? 'netlab'}${role}${process.pid}`
}

export class Lab {
  readonly id: string
  private server?: { stop(): Promise<void>; log: string }

  /** `id` names the namespaces <id>-srv, -pub and -sub. */
  constructor(id: string) {
    this.id = id
  }

  ns(which: 'srv' | Link): string {
    return `${this.id}-${which}`
  }

  apply(action: Action): void {
    execFileSync('bash', [NETLAB, action[0], this.id, ...action.slice(1)], { encoding: 'utf8' })
  }

  applyAll(actions: Action[]): void {
    for (const a of actions) this.apply(a)
  }

  /** Packets the lab's loss and UDP-block rules have dropped so far. */
  dropped(): number {
    return Number(execFileSync('bash', [NETLAB, 'dropped', this.id], { encoding: 'utf8' }).trim())
  }

  /** Lifts every cap, loss and block. */
  clear(): void {
    const second = (['up', 'down'] as const).flatMap((d) => [rate('sub2', d, 0), loss('sub2', d, 0)])
    for (const a of [...cap(0), ...everyDirection((l, d) => loss(l, d, 0)), ...second, udp(false)]) this.apply(a)
  }

  /** Creates the namespaces and starts livekit-server in the server namespace. With `turn`, its
   * embedded TURN server listens on 10.77.1.1 UDP port 3478 and the join response lists it; the
   * server's media then uses that one address too: on several, its ICE answers a relayed check
   * from whichever address routes back, which the TURN server (rightly) does not relay, as no
   * permission covers it. */
  async up({ turn = false } = {}): Promise<void> {
    this.apply(['up'])
    // @ts-expect-error plain ESM helper without types
    const { start } = await import('../scripts/livekit-server.mjs')
    const ips = turn ? '10.77.1.1/32' : '10.77.0.0/16'
    this.server = await start({ netns: this.ns('srv'), host: '10.77.1.1', ips, turn })
  }

  async down(): Promise<void> {
    await this.server?.stop()
    this.server = undefined
    this.apply(['down'])
  }

  get serverLog(): string | undefined {
    return this.server?.log
  }

  /** Bytes that left the sending end of a link's direction so far. */
  sentBytes(link: Link, dir: Direction): number {
    return Number(execFileSync('bash', [NETLAB, 'stats', this.id, link, dir], { encoding: 'utf8' }).split(' ')[0])
  }

  /**
   * Runs benchmark/e2e-peer.ts in the `where` namespace and resolves with its JSON result;
   * `onLine` sees its stdout lines as they come. Killed after `timeoutMs`.
   */
  peer<T>(
    where: Link,
    role: 'publish' | 'subscribe',
    stack: string,
    options: object,
    timeoutMs: number,
    onLine?: (line: string) => void,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const args = [
        'netns',
        'exec',
        this.ns(where),
        process.execPath,
        '--import',
        'tsx',
        join(ROOT, 'benchmark/e2e-peer.ts'),
        role,
        stack,
        JSON.stringify(options),
      ]
      const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT })
      let out = ''
      let err = ''
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.stdout.on('data', (d) => {
        const text = String(d)
        out += text
        if (onLine) for (const line of text.split('\n')) if (line.trim()) onLine(line.trim())
      })
      // NET_LOG_DIR=<dir>: each participant's stderr is kept whole in <dir>/<role>-<stack>-<ms>.log.
      const log = process.env.NET_LOG_DIR
        ? createWriteStream(join(process.env.NET_LOG_DIR, `${role}-${stack}-${Date.now()}.log`))
        : undefined
      child.stderr.on('data', (d) => {
        log?.write(d)
        err = (err + d).slice(-4000)
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        log?.end()
        if (code !== 0) {
          const why =
            err.match(/ERR_[A-Z_]+[^\n]*/)?.[0] ??
            (signal ? `killed after ${timeoutMs / 1000} s` : `exit ${code}: ${err.slice(-300)}`)
          return reject(new Error(`${role} ${stack}: ${why}`))
        }
        try {
          resolve(JSON.parse(out.trim().split('\n').pop() ?? ''))
        } catch {
          reject(new Error(`${role} ${stack}: no result`))
        }
      })
    })
  }
}

/** What e2e-peer.ts's publisher reports. */
export interface PubResult {
  sent: number
  warmup: number
  /** Capture time of the first frame, ms since `epochMs`. */
  startedAtMs: number
  /** When it called `connect`, ms since `epochMs`. */
  connectAtMs: number
  intervalMs: number
}

/** What e2e-peer.ts's subscriber reports, per frame that arrived. */
export interface SubResult {
  numbers: number[]
  /** ms since `epochMs`. */
  arrivals: number[]
  latencies: number[]
  heights: number[]
  /** An lkrtc subscriber's `getStats()` at the end. */
  stats?: { freezeCount: number; jitterBufferTargetDelay: number; jitterBufferEmittedCount: number }
}
