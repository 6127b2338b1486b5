import { VideoFrame, VideoBufferType } from '@livekit/rtc-node';
const f = new VideoFrame(new Uint8Array(64*64*4), 64, 64, VideoBufferType.RGBA);
const t = f.convert(VideoBufferType.I420);
console.log(t.data.length);
