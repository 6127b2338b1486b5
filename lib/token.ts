import { nativeCreateToken } from '../index.js'
import { checkBoolean, checkOptionalString, checkOptions, checkString, invalidArgType, invalidArgument } from './errors.js'

/** What an access token grants and to whom. */
export interface TokenOptions {
  apiKey: string
  apiSecret: string
  identity: string
  /** The room the token joins. */
  room: string
  /** Display name. */
  name?: string
  /** Validity: seconds (at most 100 years), or a string such as `'90s'`, `'10m'`, `'6h'`, `'1d'`. Default 6 hours. */
  ttl?: number | string
  /** Default `true`. */
  canPublish?: boolean
  /** Default `true`. */
  canSubscribe?: boolean
  /** Default `true`. */
  canPublishData?: boolean
  metadata?: string
  attributes?: Record<string, string>
  /** Invisible to other participants. Default `false`. */
  hidden?: boolean
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }
/** 100 years: longer is a mistake (and would overflow the token's expiry time). */
const MAX_TTL_SECONDS = 100 * 365 * 86400

function ttlSeconds(ttl: unknown): number | undefined {
  if (ttl === undefined) return undefined
  const expected = `a number of seconds from 1 to ${MAX_TTL_SECONDS} (100 years) or a duration such as '10m'`
  const inRange = (seconds: number) => seconds >= 1 && seconds <= MAX_TTL_SECONDS
  if (typeof ttl === 'number') {
    if (!inRange(ttl)) throw invalidArgument('ttl', expected, ttl)
    return ttl
  }
  if (typeof ttl !== 'string') throw invalidArgType('ttl', expected, ttl)
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(ttl)
  const seconds = m ? Number(m[1]) * UNITS[m[2] || 's'] : NaN
  if (!inRange(seconds)) throw invalidArgument('ttl', expected, ttl)
  return seconds
}

/** Signs an access token (HS256 JWT with LiveKit's video grant) for joining `options.room`. */
export function createToken(options: TokenOptions): string {
  const o = checkOptions<TokenOptions>('options', options)
  if (o.attributes !== undefined) {
    if (typeof o.attributes !== 'object' || o.attributes === null || Array.isArray(o.attributes)) {
      throw invalidArgType('attributes', 'an object of string values', o.attributes)
    }
    for (const [k, v] of Object.entries(o.attributes)) checkString(`attributes.${k}`, v)
  }
  return nativeCreateToken({
    apiKey: checkString('apiKey', o.apiKey, { nonEmpty: true }),
    apiSecret: checkString('apiSecret', o.apiSecret, { nonEmpty: true, secret: true }),
    identity: checkString('identity', o.identity, { nonEmpty: true }),
    room: checkString('room', o.room, { nonEmpty: true }),
    name: checkOptionalString('name', o.name),
    ttl: ttlSeconds(o.ttl),
    canPublish: checkBoolean('canPublish', o.canPublish, true),
    canSubscribe: checkBoolean('canSubscribe', o.canSubscribe, true),
    canPublishData: checkBoolean('canPublishData', o.canPublishData, true),
    metadata: checkOptionalString('metadata', o.metadata),
    attributes: o.attributes,
    hidden: checkBoolean('hidden', o.hidden, false),
  })
}
