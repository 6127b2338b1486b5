// rtc-node logs at debug level unless NODE_ENV is production: keep test output readable.
process.env.NODE_ENV ??= 'production'
