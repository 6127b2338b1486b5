/** The video codecs the interop tests cover, and the MIME type LiveKit's SDKs report for each. */
export const MIME = {
  vp8: 'video/VP8',
  h264: 'video/H264',
  vp9: 'video/VP9',
  av1: 'video/AV1',
} as const

export type Codec = keyof typeof MIME

/** The codecs lkrtc publishes, in the order the interop tests run them. */
export const CODECS = ['vp8', 'h264', 'vp9', 'av1'] as const

export type PublishedCodec = (typeof CODECS)[number]

/** The codecs lkrtc receives: the same. */
export const RECEIVED_CODECS = CODECS

/** The codecs whose frames carry LiveKit's packet trailer (frame metadata): not AV1. */
export const METADATA_CODECS = ['vp8', 'h264', 'vp9'] as const
