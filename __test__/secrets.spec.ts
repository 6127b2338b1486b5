/**
 * Access tokens and API secrets are never quoted in error messages, even when passed wrongly.
 */
import test from 'ava'

import { createToken, Room, type LkrtcError } from '../lib/index.js'

test('createToken with an apiSecret of another type rejects without quoting it', (t) => {
  const error = t.throws(() =>
    createToken({ apiKey: 'k', apiSecret: 987654321 as never, identity: 'i', room: 'r' }),
  ) as LkrtcError
  t.is(error.code, 'ERR_INVALID_ARG_TYPE')
  t.is(error.message, 'invalid apiSecret: expected a string, got a number')
})

test('connect with a token of another type rejects without quoting it', async (t) => {
  const room = new Room()
  const error = (await t.throwsAsync(room.connect('ws://127.0.0.1:1', 123456789 as never))) as LkrtcError
  t.is(error.code, 'ERR_INVALID_ARG_TYPE')
  t.is(error.message, 'invalid token: expected a string, got a number')
})

test('arguments that are not secrets are still quoted in errors', (t) => {
  const error = t.throws(() =>
    createToken({ apiKey: 42 as never, apiSecret: 's', identity: 'i', room: 'r' }),
  ) as LkrtcError
  t.is(error.message, 'invalid apiKey: expected a string, got number 42')
})
