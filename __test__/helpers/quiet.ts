// rtc-node logs at debug level unless NODE_ENV is production (ava sets it to `test`): keep test
// output readable. Imported before @livekit/rtc-node, which reads it once at load.
if (!process.env.NODE_ENV || process.env.NODE_ENV === 'test') process.env.NODE_ENV = 'production'
