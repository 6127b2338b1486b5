//! Joins a room and publishes a moving test pattern until Ctrl-C.
//! `cargo run -p lkrtc-rtc --example publish_pattern -- ws://127.0.0.1:7880 devkey secret my-room [vp8|h264]`

use std::time::Duration;

use lkrtc_rtc::{
  create_token, LocalVideoTrack, Room, RoomOptions, TokenOptions, TrackPublishOptions, TrackSource, VideoBufferType,
  VideoCodec, VideoFrame, VideoRotation, VideoSource, VideoSourceOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
  let args: Vec<String> = std::env::args().collect();
  let [_, url, key, secret, room, rest @ ..] = args.as_slice() else {
    eprintln!("usage: publish_pattern <url> <api-key> <api-secret> <room> [vp8|h264]");
    std::process::exit(2);
  };
  let codec = match rest.first().map(String::as_str) {
    Some("h264") => VideoCodec::H264,
    _ => VideoCodec::Vp8,
  };
  let token = create_token(&TokenOptions {
    api_key: key.clone(),
    api_secret: secret.clone(),
    identity: "lkrtc-pattern".into(),
    room: room.clone(),
    ..Default::default()
  })?;
  let (room, mut events) = Room::connect(url, &token, RoomOptions::default()).await?;
  println!(
    "joined {} ({}) as {}",
    room.name(),
    room.sid(),
    room.local_participant().identity()
  );

  let (w, h) = (640, 480);
  let source = VideoSource::new(w, h, VideoSourceOptions::default())?;
  let track = LocalVideoTrack::create_video_track("pattern", &source);
  let options = TrackPublishOptions {
    source: TrackSource::Camera,
    video_codec: codec,
    video_encoding: None,
    ..Default::default()
  };
  let publication = room.local_participant().publish_track(&track, options).await?;
  println!("published {} ({})", publication.sid, publication.mime_type);

  let feeder = source.clone();
  std::thread::spawn(move || {
    let mut frame = VideoFrame::new_zeroed(w, h, VideoBufferType::I420).unwrap();
    for n in 0u64.. {
      for (i, px) in frame.plane_mut(0).unwrap().iter_mut().enumerate() {
        *px = ((i as u64 % w as u64 + n * 3) % 256) as u8;
      }
      if feeder
        .capture_frame(&frame.as_ref(), 0, VideoRotation::Rotation0)
        .is_err()
      {
        break;
      }
      std::thread::sleep(Duration::from_millis(33));
    }
  });

  loop {
    tokio::select! {
      event = events.recv() => match event {
        Some(event) => println!("{event:?}"),
        None => break,
      },
      _ = tokio::signal::ctrl_c() => {
        room.disconnect().await;
      }
    }
  }
  source.close();
  Ok(())
}
