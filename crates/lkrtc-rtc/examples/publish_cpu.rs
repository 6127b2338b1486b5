//! Publishes a moving picture for a while and prints where the process's CPU went: per thread
//! (from /proc/self/task) and per encoded frame. Linux only.
//! `cargo run --release -p lkrtc-rtc --example publish_cpu -- ws://127.0.0.1:7880 devkey secret [1280x720] [30] [10] [vp8|h264]`
//! (size, frames per second, seconds measured after a 3 s warm-up, codec).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lkrtc_rtc::{
  create_token, LocalVideoTrack, Room, RoomOptions, TokenOptions, TrackPublishOptions, TrackSource, VideoBufferType,
  VideoCodec, VideoEncoding, VideoFrame, VideoRotation, VideoSource, VideoSourceOptions,
};

/// CPU time (user + system) of every thread, summed by thread name, in clock ticks.
fn thread_ticks() -> BTreeMap<String, u64> {
  let mut out = BTreeMap::new();
  let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
    return out;
  };
  for entry in dir.flatten() {
    let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
      continue;
    };
    // "tid (comm) state ..." : comm may hold spaces, so split at the last ')'.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
      continue;
    };
    let name = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let ticks = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
      + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    *out.entry(name).or_insert(0) += ticks;
  }
  out
}

fn thread_counts() -> BTreeMap<String, usize> {
  let mut out = BTreeMap::new();
  for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
    if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
      *out.entry(comm.trim().to_string()).or_insert(0) += 1;
    }
  }
  out
}

/// Process CPU time (user + system) in seconds.
fn process_cpu() -> f64 {
  // SAFETY: getrusage writes into the zeroed struct it is given.
  let mut usage: libc_rusage = unsafe { std::mem::zeroed() };
  // SAFETY: RUSAGE_SELF (0) with a valid pointer.
  unsafe { getrusage(0, &mut usage) };
  let tv = |s: i64, us: i64| s as f64 + us as f64 / 1e6;
  tv(usage.ru_utime[0], usage.ru_utime[1]) + tv(usage.ru_stime[0], usage.ru_stime[1])
}

#[repr(C)]
struct libc_rusage {
  ru_utime: [i64; 2],
  ru_stime: [i64; 2],
  _rest: [i64; 14],
}

extern "C" {
  fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

/// A moving picture with texture: scrolling gradient, a moving bright square, a striped band and
/// per-frame changing fine detail, so the encoder has real work every frame.
fn paint(frame: &mut VideoFrame, n: u64) {
  let (w, h) = (frame.width() as usize, frame.height() as usize);
  let t = n as usize;
  let y_plane = frame.plane_mut(0).expect("Y");
  for y in 0..h {
    for x in 0..w {
      let mut v = ((x + t * 6) * 160 / w + y * 60 / h) % 220 + 16;
      if (x + w - (t * 9) % w) % w < w / 6 && y > h / 4 && y < h / 2 {
        v = 235;
      }
      if y > h * 3 / 4 && y < h * 3 / 4 + h / 12 {
        v = if ((x + t * 3) / 3).is_multiple_of(2) { 200 } else { 60 };
      }
      // Fine texture that moves diagonally.
      v += (x * 7 + y * 13 + t * 5) % 17;
      y_plane[y * w + x] = v.min(255) as u8;
    }
  }
  for plane in 1..3 {
    let cw = w.div_ceil(2);
    for (i, px) in frame.plane_mut(plane).expect("chroma").iter_mut().enumerate() {
      let (x, y) = (i % cw, i / cw);
      *px = (64 + (if plane == 1 { x } else { y } * 2 + t) % 128) as u8;
    }
  }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
  let args: Vec<String> = std::env::args().collect();
  let [_, url, key, secret, rest @ ..] = args.as_slice() else {
    eprintln!("usage: publish_cpu <url> <api-key> <api-secret> [WxH] [fps] [seconds] [vp8|h264]");
    std::process::exit(2);
  };
  let (w, h) = rest
    .first()
    .and_then(|s| s.split_once('x'))
    .map(|(a, b)| (a.parse().unwrap_or(1280), b.parse().unwrap_or(720)))
    .unwrap_or((1280u32, 720u32));
  let fps: f64 = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(30.0);
  let seconds: f64 = rest.get(2).and_then(|s| s.parse().ok()).unwrap_or(10.0);
  let codec = match rest.get(3).map(String::as_str) {
    Some("h264") => VideoCodec::H264,
    _ => VideoCodec::Vp8,
  };
  let bitrate = if w * h >= 1920 * 1080 { 3_000_000 } else { 2_500_000 };

  let token = create_token(&TokenOptions {
    api_key: key.clone(),
    api_secret: secret.clone(),
    identity: "lkrtc-cpu".into(),
    room: format!("cpu-{}", std::process::id()),
    ..Default::default()
  })?;
  let (room, mut events) = Room::connect(url, &token, RoomOptions::default()).await?;
  tokio::spawn(async move { while events.recv().await.is_some() {} });

  // Pre-render a loop of frames so painting does not count against the publish path.
  let frames: Vec<VideoFrame> = (0..60u64)
    .map(|n| {
      let mut f = VideoFrame::new_zeroed(w, h, VideoBufferType::I420).unwrap();
      paint(&mut f, n);
      f
    })
    .collect();

  let source = VideoSource::new(w, h, VideoSourceOptions::default())?;
  let track = LocalVideoTrack::create_video_track("cpu", &source);
  let options = TrackPublishOptions {
    source: TrackSource::Camera,
    video_codec: codec,
    video_encoding: Some(VideoEncoding {
      max_bitrate: bitrate,
      max_framerate: fps,
    }),
    ..Default::default()
  };
  let publication = room.local_participant().publish_track(&track, options).await?;
  println!("published {w}x{h}@{fps} {codec:?} {} kbit/s", bitrate / 1000);

  let feeder = source.clone();
  let feed = std::thread::Builder::new().name("feeder".into()).spawn(move || {
    let interval = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    for n in 0u64.. {
      let frame = &frames[(n % frames.len() as u64) as usize];
      if feeder
        .capture_frame(&frame.as_ref(), 0, VideoRotation::Rotation0)
        .is_err()
      {
        break;
      }
      let due = start + interval * (n as u32 + 1);
      if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
      }
    }
  })?;

  tokio::time::sleep(Duration::from_secs(3)).await;
  let lp = room.local_participant();
  let s0 = lp.publish_stats(&publication.sid).unwrap_or_default();
  let (t0, c0, w0) = (thread_ticks(), process_cpu(), Instant::now());
  tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
  let (t1, c1, wall) = (thread_ticks(), process_cpu(), w0.elapsed().as_secs_f64());
  let s1 = lp.publish_stats(&publication.sid).unwrap_or_default();

  // SAFETY: sysconf is always safe to call.
  let hz = 100.0;
  let encoded = s1.frames_encoded - s0.frames_encoded;
  println!(
    "window {wall:.1} s: process CPU {:.1}% of a core; {} frames encoded ({:.1} fps), {} dropped in the slot, {:.0} kbit/s sent",
    (c1 - c0) / wall * 100.0,
    encoded,
    encoded as f64 / wall,
    s1.frames_dropped - s0.frames_dropped,
    (s1.bytes_sent - s0.bytes_sent) as f64 * 8.0 / wall / 1000.0,
  );
  let counts = thread_counts();
  for (name, ticks) in &t1 {
    let d = ticks - t0.get(name).copied().unwrap_or(0);
    if d == 0 {
      continue;
    }
    let secs = d as f64 / hz;
    let per_frame = if name.starts_with("lkrtc-encoder") && encoded > 0 {
      format!("  ({:.2} ms CPU per frame)", secs * 1000.0 / encoded as f64)
    } else {
      String::new()
    };
    println!(
      "  {:<18} x{:<2} {:>6.1}%{per_frame}",
      name,
      counts.get(name).copied().unwrap_or(0),
      secs / wall * 100.0
    );
  }
  source.close();
  let _ = feed.join();
  room.disconnect().await;
  Ok(())
}
