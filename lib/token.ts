import { nativeCreateToken } from '../index.js'
import { checkOptionalBoolean, checkOptionalString, checkOptions, checkString, invalidArgType } from './errors.js'

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

/** The token's validity: its JS type is checked here, its value (range, units) by the core. */
function checkTtl(ttl: unknown): number | string | undefined {
  if (ttl === undefined || typeof ttl === 'number' || typeof ttl === 'string') return ttl
  throw invalidArgType('ttl', "a number of seconds or a duration such as '10m'", ttl)
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
    ttl: checkTtl(o.ttl),
    canPublish: checkOptionalBoolean('canPublish', o.canPublish),
    canSubscribe: checkOptionalBoolean('canSubscribe', o.canSubscribe),
    canPublishData: checkOptionalBoolean('canPublishData', o.canPublishData),
    metadata: checkOptionalString('metadata', o.metadata),
    attributes: o.attributes,
    hidden: checkOptionalBoolean('hidden', o.hidden),
  })
}
