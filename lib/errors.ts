/** Argument checks of the public API: failures are `Error`s with a stable `code`. */

export interface LkrtcError extends Error {
  code: string
}

export function lkrtcError(code: string, message: string): LkrtcError {
  return Object.assign(new Error(message), { code })
}

/**
 * What `value` is, for an error message. With `secret`, never its content: only its type (a
 * misplaced access token or API secret must not end up in a log through an error).
 */
export function describe(value: unknown, { secret = false } = {}): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (secret && ['string', 'number', 'boolean', 'bigint'].includes(typeof value)) return `a ${typeof value}`
  switch (typeof value) {
    case 'undefined':
      return 'undefined'
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof value} ${String(value)}`
    case 'function':
      return 'a function'
    default:
      return value && (value as object).constructor?.name
        ? `an instance of ${(value as object).constructor.name}`
        : `a ${typeof value}`
  }
}

export function invalidArgType(name: string, expected: string, value: unknown, { secret = false } = {}): LkrtcError {
  return lkrtcError('ERR_INVALID_ARG_TYPE', `invalid ${name}: expected ${expected}, got ${describe(value, { secret })}`)
}

export function invalidArgument(name: string, expected: string, value: unknown, { secret = false } = {}): LkrtcError {
  return lkrtcError('ERR_INVALID_ARGUMENT', `invalid ${name}: expected ${expected}, got ${describe(value, { secret })}`)
}

/** A string argument; with `secret` (tokens, API secrets) its value is never quoted in the error. */
export function checkString(name: string, value: unknown, { nonEmpty = false, secret = false } = {}): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'a string', value, { secret })
  if (nonEmpty && value.length === 0) throw invalidArgument(name, 'a non-empty string', value, { secret })
  return value
}

export function checkOptionalString(name: string, value: unknown): string | undefined {
  return value === undefined ? undefined : checkString(name, value)
}

export function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  return checkOptionalBoolean(name, value) ?? fallback
}

/** A boolean or `undefined` (the core's default then applies). */
export function checkOptionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'boolean') throw invalidArgType(name, 'a boolean', value)
  return value
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, `an integer from ${min} to ${max}`, value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `an integer from ${min} to ${max}`, value)
  }
  return value
}

export function checkOptions<T extends object>(name: string, value: unknown): Partial<T> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'an options object', value)
  return value as Partial<T>
}

export function checkEnum<E extends number>(
  name: string,
  value: unknown,
  values: Record<string, string | number>,
  fallback?: E,
): E {
  if (value === undefined && fallback !== undefined) return fallback
  const allowed = Object.entries(values).filter(([, v]) => typeof v === 'number')
  if (typeof value !== 'number' || !allowed.some(([, v]) => v === value)) {
    const names = allowed.map(([k, v]) => `${k} (${v})`).join(', ')
    throw (typeof value === 'number' ? invalidArgument : invalidArgType)(name, `one of ${names}`, value)
  }
  return value as E
}
