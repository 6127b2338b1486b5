/** The video codecs the interop tests cover, and the MIME type LiveKit's SDKs report for each. */
export const MIME = {
  vp8: 'video/VP8',
  h264: 'video/H264',
  vp9: 'video/VP9',
} as const

export type Codec = keyof typeof MIME

/** Every codec, in the order the interop tests run them. */
export const CODECS = Object.keys(MIME) as Codec[]
