"""Frame metadata with LiveKit's Python SDK (the `livekit` wheel, a peer lkrtc did not write).

subscribe <url> <token> <seconds>: subscribes to the first video track and prints one JSON line
per decoded frame: its size, the colour of its centre pixel, and its metadata (`frame_id`,
`user_timestamp`, null when absent) as the SDK's `VideoFrameEvent.metadata` reports it.

publish <url> <token> <seconds> <width> <height>: publishes a solid orange picture at 15 fps,
frame n (from 1) carrying frame_id n and user_timestamp 1_700_000_000_000_000 + n * 66_666,
with the track's frame metadata features advertised (`frame_metadata_features`).
"""

import asyncio
import json
import sys

from livekit import rtc

BASE_TS = 1_700_000_000_000_000
STEP_US = 66_666


async def subscribe(url: str, token: str, seconds: float) -> None:
    room = rtc.Room()
    subscribed: asyncio.Future = asyncio.get_running_loop().create_future()

    @room.on("track_subscribed")
    def on_subscribed(track, publication, participant):
        if track.kind == rtc.TrackKind.KIND_VIDEO and not subscribed.done():
            subscribed.set_result((track, publication))

    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
    print(json.dumps({"event": "connected"}), flush=True)
    track, publication = await asyncio.wait_for(subscribed, 20)
    features = [int(f) for f in publication.frame_metadata_features]
    print(json.dumps({"event": "subscribed", "sid": publication.sid, "features": features}), flush=True)

    async def read() -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
        async for event in stream:
            frame = event.frame
            w, h = frame.width, frame.height
            i = ((h // 2) * w + w // 2) * 4
            rgb = list(bytes(frame.data[i : i + 3]))
            m = event.metadata
            meta = None
            if m is not None:
                meta = {
                    "frame_id": m.frame_id if m.HasField("frame_id") else None,
                    # As a string: JSON numbers lose precision past 2^53.
                    "user_timestamp": str(m.user_timestamp) if m.HasField("user_timestamp") else None,
                }
            print(json.dumps({"event": "frame", "width": w, "height": h, "rgb": rgb, "metadata": meta}), flush=True)

    try:
        await asyncio.wait_for(read(), seconds)
    except asyncio.TimeoutError:
        pass
    await room.disconnect()


async def publish(url: str, token: str, seconds: float, width: int, height: int) -> None:
    room = rtc.Room()
    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("py-camera", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        video_codec=rtc.VideoCodec.VP8,
        frame_metadata_features=[
            rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
            rtc.FrameMetadataFeature.FMF_FRAME_ID,
        ],
    )
    await room.local_participant.publish_track(track, options)
    print(json.dumps({"event": "published"}), flush=True)
    rgba = bytes([255, 140, 0, 255]) * (width * height)
    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    n = 0
    while loop.time() < end:
        n += 1
        metadata = rtc.FrameMetadata(frame_id=n, user_timestamp=BASE_TS + n * STEP_US)
        source.capture_frame(frame, metadata=metadata)
        await asyncio.sleep(1 / 15)
    print(json.dumps({"event": "done", "frames": n}), flush=True)
    await room.disconnect()


if __name__ == "__main__":
    mode, url, token, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    if mode == "subscribe":
        asyncio.run(subscribe(url, token, seconds))
    else:
        asyncio.run(publish(url, token, seconds, int(sys.argv[5]), int(sys.argv[6])))
