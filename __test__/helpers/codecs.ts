/** The video codecs the interop tests cover, and the MIME type LiveKit's SDKs report for each. */
export const MIME = {
  vp8: 'video/VP8',
  h264: 'video/H264',
} as const

export type Codec = keyof typeof MIME
