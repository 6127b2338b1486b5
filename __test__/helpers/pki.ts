/** Certificates for TLS tests on loopback: a fresh CA and a server certificate it signs. */
import { generate } from 'selfsigned'

export interface Pki {
  /** The CA certificate, PEM: what `caCertificates` takes. */
  caPem: string
  /** The server's certificate followed by the CA's, PEM. */
  chain: string
  key: string
}

/** A certificate for 127.0.0.1. */
export const LOOPBACK = [{ type: 7 as const, ip: '127.0.0.1' }]

/** A fresh CA and a server certificate it signs for `altNames`. */
export async function makePki(altNames: ({ type: 2; value: string } | { type: 7; ip: string })[]): Promise<Pki> {
  const ca = await generate([{ name: 'commonName', value: 'lkrtc test CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  })
  const server = await generate([{ name: 'commonName', value: 'lkrtc test server' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  })
  return { caPem: ca.cert, chain: `${server.cert.trimEnd()}\n${ca.cert.trimEnd()}\n`, key: server.private }
}
