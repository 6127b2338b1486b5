// A local web page that plays a room's video in a browser with livekit-client: the demo's
// `--viewer` and the viewer test serve it. Nothing is fetched from the network: the page and
// livekit-client's browser build are served from this package, on loopback only.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { dirname, join } from 'node:path'

const HERE = __dirname

/** livekit-client's UMD build (it defines the `LivekitClient` global the page uses). */
function livekitClientBundle(): Buffer {
  // The package's CommonJS entry is that build; its exports do not include package.json.
  const main = require.resolve('livekit-client')
  return readFileSync(join(dirname(main), 'livekit-client.umd.js'))
}

export interface Viewer {
  /** The page's address for a room at `serverUrl` joined with `token`. */
  url(serverUrl: string, token: string, extra?: Record<string, string>): string
  close(): Promise<void>
}

/** Serves the viewer page on 127.0.0.1 (`port` 0 picks a free one). */
export async function startViewer(port = 0): Promise<Viewer> {
  const page = readFileSync(join(HERE, 'viewer/index.html'))
  const bundle = livekitClientBundle()
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page)
    } else if (path === '/livekit-client.umd.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const address = server.address()
  const actualPort = typeof address === 'object' && address ? address.port : port
  return {
    url(serverUrl, token, extra = {}) {
      const fragment = new URLSearchParams({ url: serverUrl, token, ...extra })
      return `http://127.0.0.1:${actualPort}/#${fragment}`
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
