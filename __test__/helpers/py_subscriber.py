"""A subscriber from LiveKit's Python SDK (the `livekit` wheel, a peer lkrtc did not write).

Joins a room, subscribes to the first video track, asks for one quality with
`set_video_quality`, and prints one JSON line per decoded frame: its size and the colour of its
centre pixel. Usage: py_subscriber.py <url> <token> <low|medium|high> <seconds>
[<after seconds> <then low|medium|high>]: asks for another quality after a while.
"""

import asyncio
import json
import sys

from livekit import rtc

QUALITIES = {
    "low": rtc.VideoQuality.VIDEO_QUALITY_LOW,
    "medium": rtc.VideoQuality.VIDEO_QUALITY_MEDIUM,
    "high": rtc.VideoQuality.VIDEO_QUALITY_HIGH,
}


async def main(url: str, token: str, quality: str, seconds: float, switch: tuple | None) -> None:
    room = rtc.Room()
    subscribed: asyncio.Future = asyncio.get_running_loop().create_future()

    @room.on("track_subscribed")
    def on_subscribed(track, publication, participant):
        if track.kind == rtc.TrackKind.KIND_VIDEO and not subscribed.done():
            subscribed.set_result((track, publication))

    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
    print(json.dumps({"event": "connected"}), flush=True)
    track, publication = await asyncio.wait_for(subscribed, 20)
    publication.set_video_quality(QUALITIES[quality])
    print(json.dumps({"event": "subscribed", "sid": publication.sid}), flush=True)

    async def read() -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
        async for event in stream:
            frame = event.frame
            w, h = frame.width, frame.height
            i = ((h // 2) * w + w // 2) * 4
            data = bytes(frame.data[i : i + 3])
            print(json.dumps({"event": "frame", "width": w, "height": h, "rgb": list(data)}), flush=True)

    async def switch_later() -> None:
        if switch is None:
            return
        await asyncio.sleep(switch[0])
        publication.set_video_quality(QUALITIES[switch[1]])
        print(json.dumps({"event": "switched", "quality": switch[1]}), flush=True)

    switcher = asyncio.ensure_future(switch_later())
    try:
        await asyncio.wait_for(read(), seconds)
    except asyncio.TimeoutError:
        pass
    switcher.cancel()
    await room.disconnect()


if __name__ == "__main__":
    switch = (float(sys.argv[5]), sys.argv[6]) if len(sys.argv) > 6 else None
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), switch))
