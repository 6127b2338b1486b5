//! Two lkrtc transports negotiated with each other over 127.0.0.1: publisher offers, subscriber
//! answers, candidates are trickled as LiveKit JSON, media and data flow both ways.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lkrtc_transport::{
  Mid, OutgoingVideoFrame, PeerTransport, TransportConfig, TransportEvent, TransportHandle, TransportRole, VideoCodec,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::timeout;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);

struct Side {
  handle: TransportHandle,
  events: UnboundedReceiver<TransportEvent>,
}

impl Side {
  /// Next event matching `pick`, skipping others; panics after `WAIT`.
  async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(TransportEvent) -> Option<T>) -> T {
    let fut = async {
      while let Some(ev) = self.events.recv().await {
        if let Some(v) = pick(ev) {
          return Some(v);
        }
      }
      None
    };
    match timeout(WAIT, fut).await {
      Ok(Some(v)) => v,
      Ok(None) => panic!("event stream ended while waiting for {what}"),
      Err(_) => panic!("timed out waiting for {what}"),
    }
  }
}

/// Starts a transport whose LocalCandidate events are trickled to `peer` (once known) and all
/// other events are forwarded to the returned side.
async fn start(role: TransportRole) -> (Side, tokio::sync::oneshot::Sender<TransportHandle>) {
  // RUST_LOG=str0m=debug,lkrtc_transport=trace shows the str0m side of a failing test.
  let _ = tracing_subscriber::fmt()
    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
    .with_test_writer()
    .try_init();
  let (handle, mut raw) = PeerTransport::start(TransportConfig::new(role, LOOPBACK))
    .await
    .unwrap();
  assert_eq!(handle.local_addr().ip(), LOOPBACK);
  let (tx, events) = unbounded_channel();
  let (peer_tx, peer_rx) = tokio::sync::oneshot::channel::<TransportHandle>();
  tokio::spawn(async move {
    let mut peer_rx = Some(peer_rx);
    let mut peer: Option<TransportHandle> = None;
    while let Some(ev) = raw.recv().await {
      if let TransportEvent::LocalCandidate(json) = &ev {
        if peer.is_none() {
          if let Some(rx) = peer_rx.take() {
            peer = rx.await.ok();
          }
        }
        if let Some(p) = &peer {
          p.add_remote_candidate(json).unwrap();
          // LiveKit ends trickling with an empty candidate.
          p.add_remote_candidate(r#"{"candidate":"","sdpMid":"0","sdpMLineIndex":0}"#)
            .unwrap();
        }
      }
      if tx.send(ev).is_err() {
        break;
      }
    }
  });
  (Side { handle, events }, peer_tx)
}

struct Pair {
  publisher: Side,
  subscriber: Side,
  pub_mid: Mid,
  sub_mid: Mid,
}

async fn connected_pair(codec: VideoCodec) -> Pair {
  let (mut publisher, pub_peer) = start(TransportRole::Publisher).await;
  let (mut subscriber, sub_peer) = start(TransportRole::Subscriber).await;
  let _ = pub_peer.send(subscriber.handle.clone());
  let _ = sub_peer.send(publisher.handle.clone());

  publisher
    .next("initial NegotiationNeeded", |e| {
      matches!(e, TransportEvent::NegotiationNeeded).then_some(())
    })
    .await;
  let pub_mid = publisher
    .handle
    .add_video_track("PA_pub|TR_cam", "TR_cam", codec, &[])
    .await
    .unwrap();
  let offer = publisher.handle.create_offer(false).await.unwrap();
  assert_first_video_codec(&offer, codec);
  assert!(offer.contains("m=application"), "first offer carries the data channels");
  let answer = subscriber.handle.apply_offer(&offer).await.unwrap();
  publisher.handle.apply_answer(&answer).await.unwrap();

  let (sub_mid, stream_id, track_id, got_codec) = subscriber
    .next("TrackAdded", |e| match e {
      TransportEvent::TrackAdded {
        mid,
        stream_id,
        track_id,
        codec,
      } => Some((mid, stream_id, track_id, codec)),
      _ => None,
    })
    .await;
  assert_eq!(stream_id, "PA_pub|TR_cam");
  assert_eq!(track_id, "TR_cam");
  assert_eq!(got_codec, codec);

  publisher
    .next("publisher Connected", |e| {
      matches!(e, TransportEvent::Connected).then_some(())
    })
    .await;
  subscriber
    .next("subscriber Connected", |e| {
      matches!(e, TransportEvent::Connected).then_some(())
    })
    .await;
  Pair {
    publisher,
    subscriber,
    pub_mid,
    sub_mid,
  }
}

/// The first payload type of the (last) video m-line is `codec`.
fn assert_first_video_codec(sdp: &str, codec: VideoCodec) {
  let m_line = sdp.lines().rfind(|l| l.starts_with("m=video")).expect("a video m-line");
  let pt = m_line.split_whitespace().nth(3).expect("a payload type");
  let name = codec.sdp_name();
  assert!(
    sdp.contains(&format!("a=rtpmap:{pt} {name}/90000")),
    "{m_line} should start with {name}:\n{sdp}"
  );
}

/// A VP8 frame: 3-byte frame tag (bit 0 clear = keyframe) + keyframe start code and size, then a
/// pattern carrying the frame index so order and content can be checked.
fn vp8_frame(index: u32, keyframe: bool, len: usize) -> Vec<u8> {
  let mut v = Vec::with_capacity(len);
  let tag: u8 = if keyframe { 0x10 } else { 0x11 };
  v.extend_from_slice(&[tag, 0x02, 0x00]);
  if keyframe {
    v.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]); // 640x480
  }
  v.extend_from_slice(&index.to_be_bytes());
  let mut x = index.wrapping_mul(2654435761);
  while v.len() < len {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v.push(x as u8);
  }
  v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_frames_arrive_intact_and_in_order() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  let count = 40u32;
  let mut sent = Vec::new();
  for i in 0..count {
    let keyframe = i == 0 || i == 20;
    let frame = vp8_frame(i, keyframe, if keyframe { 40_000 } else { 4_000 + (i as usize * 97) });
    sent.push(frame.clone());
    pair.publisher.handle.write_video(
      pair.pub_mid,
      OutgoingVideoFrame {
        data: frame,
        keyframe,
        capture_time_us: 1_000_000 + i as i64 * 33_333,
        rotation: 1,
        rid: None,
        trailer_len: 0,
      },
    );
    tokio::time::sleep(Duration::from_millis(33)).await;
  }
  let mut last_rtp: Option<u32> = None;
  for i in 0..count {
    let (mid, data, keyframe, rtp_time, rotation, codec) = pair
      .subscriber
      .next("VideoFrame", |e| match e {
        TransportEvent::VideoFrame {
          mid,
          data,
          keyframe,
          rtp_time,
          rotation,
          codec,
          ..
        } => Some((mid, data, keyframe, rtp_time, rotation, codec)),
        _ => None,
      })
      .await;
    assert_eq!(mid, pair.sub_mid);
    assert_eq!(codec, VideoCodec::Vp8);
    assert_eq!(data, sent[i as usize], "frame {i} differs");
    assert_eq!(keyframe, i == 0 || i == 20, "keyframe flag of frame {i}");
    assert_eq!(rotation, 1, "CVO rotation");
    if let Some(prev) = last_rtp {
      let d = rtp_time.wrapping_sub(prev);
      assert!((2999..=3001).contains(&d), "rtp step {d}");
    }
    last_rtp = Some(rtp_time);
  }
  // The send-side estimate is reported.
  let bps = pair
    .publisher
    .next("BitrateEstimate", |e| match e {
      TransportEvent::BitrateEstimate { bps } => Some(bps),
      _ => None,
    })
    .await;
  assert!(bps > 0);
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_asks_for_a_first_keyframe() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  let mid = pair
    .publisher
    .next("KeyframeRequest on connect", |e| match e {
      TransportEvent::KeyframeRequest { mid, .. } => Some(mid),
      _ => None,
    })
    .await;
  assert_eq!(mid, pair.pub_mid);
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_m_line_is_accepted_but_not_reported() {
  let (publisher, _pe) = PeerTransport::start(TransportConfig::new(TransportRole::Publisher, LOOPBACK))
    .await
    .unwrap();
  let (subscriber, mut se) = PeerTransport::start(TransportConfig::new(TransportRole::Subscriber, LOOPBACK))
    .await
    .unwrap();
  publisher
    .add_video_track("PA_a|TR_v", "TR_v", VideoCodec::Vp8, &[])
    .await
    .unwrap();
  let offer = publisher.create_offer(false).await.unwrap();
  // Append an opus m-line as livekit-server offers for audio tracks.
  let ufrag = offer.lines().find(|l| l.starts_with("a=ice-ufrag:")).unwrap();
  let pwd = offer.lines().find(|l| l.starts_with("a=ice-pwd:")).unwrap();
  let audio = format!(
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n{ufrag}\r\n{pwd}\r\na=setup:actpass\r\na=mid:au\r\n\
     a=sendonly\r\na=msid:PA_a|TR_a TR_a\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1234 cname:x\r\n"
  );
  let offer = format!("{offer}{audio}");
  let bundle = offer
    .lines()
    .find(|l| l.starts_with("a=group:BUNDLE"))
    .unwrap()
    .to_owned();
  let offer = offer.replace(&bundle, &format!("{bundle} au"));
  let answer = subscriber.apply_offer(&offer).await.unwrap();
  assert!(answer.contains("m=audio 9"), "audio is accepted:\n{answer}");
  // Only the video m-line is a track.
  let mut added = Vec::new();
  while let Ok(ev) = se.try_recv() {
    if let TransportEvent::TrackAdded { track_id, .. } = ev {
      added.push(track_id);
    }
  }
  assert_eq!(added, vec!["TR_v".to_owned()]);
  publisher.close().await;
  subscriber.close().await;
}

/// A frame the receiver cannot depacketize (here an H.264 NAL unit of a reserved type) is
/// dropped on its own: the transport carries on, and the next frame says it does not follow on,
/// so the decoder waits for a keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_cannot_be_depacketized_is_dropped_and_the_connection_lives() {
  let mut pair = connected_pair(VideoCodec::H264).await;
  let nal = |header: u8, len: usize| {
    let mut au = vec![0, 0, 0, 1, header];
    au.extend((0..len).map(|i| (i % 251) as u8 | 1));
    au
  };
  let mut key = nal(0x67, 12);
  key.extend(nal(0x68, 4));
  key.extend(nal(0x65, 3000));
  // Reserved NAL unit type 30: str0m's depacketizer refuses it.
  let frames = [
    (key, true),
    (nal(0x1e, 400), false),
    (nal(0x41, 700), false),
    (nal(0x41, 700), false),
  ];
  for (i, (data, keyframe)) in frames.into_iter().enumerate() {
    pair.publisher.handle.write_video(
      pair.pub_mid,
      OutgoingVideoFrame {
        data,
        keyframe,
        capture_time_us: i as i64 * 33_333,
        rotation: 0,
        rid: None,
        trailer_len: 0,
      },
    );
    tokio::time::sleep(Duration::from_millis(33)).await;
  }
  let mut seen = Vec::new();
  while seen.len() < 3 {
    let frame = pair
      .subscriber
      .next("VideoFrame", |e| match e {
        TransportEvent::VideoFrame {
          data,
          keyframe,
          contiguous,
          ..
        } => Some((data[4], keyframe, contiguous)),
        TransportEvent::Failed { reason } => panic!("the transport failed: {reason}"),
        _ => None,
      })
      .await;
    seen.push(frame);
  }
  assert!(seen[0].1, "the keyframe arrives");
  assert_eq!(
    (seen[1].0, seen[1].2),
    (0x41, false),
    "the frame after the dropped one does not follow on"
  );
  assert_eq!((seen[2].0, seen[2].2), (0x41, true));
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_track_is_offered_first_and_delivered() {
  let mut pair = connected_pair(VideoCodec::H264).await;
  let mut au = Vec::new();
  for (nal, len) in [(0x67u8, 12usize), (0x68, 4), (0x65, 9000)] {
    au.extend_from_slice(&[0, 0, 0, 1, nal]);
    au.extend((0..len).map(|i| (i % 251) as u8 | 1));
  }
  for i in 0..5 {
    pair.publisher.handle.write_video(
      pair.pub_mid,
      OutgoingVideoFrame {
        data: au.clone(),
        keyframe: true,
        capture_time_us: i * 33_333,
        rotation: 0,
        rid: None,
        trailer_len: 0,
      },
    );
    tokio::time::sleep(Duration::from_millis(33)).await;
  }
  let (data, keyframe, codec) = pair
    .subscriber
    .next("H264 VideoFrame", |e| match e {
      TransportEvent::VideoFrame {
        data, keyframe, codec, ..
      } => Some((data, keyframe, codec)),
      _ => None,
    })
    .await;
  assert_eq!(codec, VideoCodec::H264);
  assert!(keyframe);
  // Every NAL unit arrives, each behind a start code.
  for nal in [0x67u8, 0x68, 0x65] {
    assert!(data.windows(4).any(|w| w == [0, 0, 1, nal]), "NAL {nal:#x} missing");
  }
  assert!(data.len() >= 9000);
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_track_is_offered_first_and_delivered_whole() {
  let mut pair = connected_pair(VideoCodec::Vp9).await;
  // A VP9 profile 0 keyframe header (frame marker, key frame, shown, sync code) and a body
  // several packets long, so the frame is split and joined again.
  let mut frame = vec![0x82, 0x49, 0x83, 0x42, 0x00];
  frame.extend((0..6000).map(|i| (i % 251) as u8));
  for i in 0..5 {
    pair.publisher.handle.write_video(
      pair.pub_mid,
      OutgoingVideoFrame {
        data: frame.clone(),
        keyframe: true,
        capture_time_us: i * 33_333,
        rotation: 0,
        rid: None,
        trailer_len: 0,
      },
    );
    tokio::time::sleep(Duration::from_millis(33)).await;
  }
  let (data, keyframe, codec) = pair
    .subscriber
    .next("VP9 VideoFrame", |e| match e {
      TransportEvent::VideoFrame {
        data, keyframe, codec, ..
      } => Some((data, keyframe, codec)),
      _ => None,
    })
    .await;
  assert_eq!(codec, VideoCodec::Vp9);
  assert!(keyframe);
  assert_eq!(data, frame);
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channels_carry_messages_both_ways() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  pair
    .publisher
    .handle
    .send_data(true, b"reliable from publisher".to_vec())
    .await
    .unwrap();
  pair
    .publisher
    .handle
    .send_data(false, b"lossy from publisher".to_vec())
    .await
    .unwrap();
  let mut got = Vec::new();
  while got.len() < 2 {
    let m = pair
      .subscriber
      .next("DataReceived on subscriber", |e| match e {
        TransportEvent::DataReceived { reliable, data } => Some((reliable, data)),
        _ => None,
      })
      .await;
    got.push(m);
  }
  got.sort();
  assert_eq!(got[0], (false, b"lossy from publisher".to_vec()));
  assert_eq!(got[1], (true, b"reliable from publisher".to_vec()));

  pair
    .subscriber
    .handle
    .send_data(true, b"reliable from subscriber".to_vec())
    .await
    .unwrap();
  let m = pair
    .publisher
    .next("DataReceived on publisher", |e| match e {
      TransportEvent::DataReceived { reliable, data } => Some((reliable, data)),
      _ => None,
    })
    .await;
  assert_eq!(m, (true, b"reliable from subscriber".to_vec()));
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_messages_beyond_the_sctp_buffer_all_arrive_in_order() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  // 3 MiB at once: far more than SCTP's send buffer takes, so most of it waits in the transport.
  const COUNT: usize = 48;
  const SIZE: usize = 64 * 1024;
  for n in 0..COUNT {
    let mut message = vec![n as u8; SIZE];
    message[..8].copy_from_slice(&(n as u64).to_be_bytes());
    pair.publisher.handle.send_data(true, message).await.unwrap();
  }
  for n in 0..COUNT {
    let data = pair
      .subscriber
      .next("a large reliable message", |e| match e {
        TransportEvent::DataReceived { reliable: true, data } => Some(data),
        _ => None,
      })
      .await;
    assert_eq!(data.len(), SIZE);
    assert_eq!(u64::from_be_bytes(data[..8].try_into().unwrap()), n as u64);
    assert!(data[8..].iter().all(|&b| b == n as u8));
  }
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_request_reaches_the_publisher() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  // The receiver learns the sender's SSRC from media; send a frame first.
  pair.publisher.handle.write_video(
    pair.pub_mid,
    OutgoingVideoFrame {
      data: vp8_frame(0, true, 2000),
      keyframe: true,
      capture_time_us: 0,
      rotation: 0,
      rid: None,
      trailer_len: 0,
    },
  );
  pair
    .subscriber
    .next("first frame", |e| {
      matches!(e, TransportEvent::VideoFrame { .. }).then_some(())
    })
    .await;
  // Track-became-writable requests arrive on connect; drain them so the next one is the PLI.
  tokio::time::sleep(Duration::from_millis(200)).await;
  while pair.publisher.events.try_recv().is_ok() {}
  pair.subscriber.handle.request_keyframe(pair.sub_mid);
  let mid = pair
    .publisher
    .next("KeyframeRequest", |e| match e {
      TransportEvent::KeyframeRequest { mid, .. } => Some(mid),
      _ => None,
    })
    .await;
  assert_eq!(mid, pair.pub_mid);
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_event_stream() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  pair.publisher.handle.close().await;
  timeout(WAIT, async { while pair.publisher.events.recv().await.is_some() {} })
    .await
    .expect("stream ends");
  // Calls after close fail with a code instead of hanging.
  let e = pair.publisher.handle.create_offer(false).await.unwrap_err();
  assert_eq!(e.code(), "ERR_TRANSPORT_CLOSED");
  pair.publisher.handle.close().await; // idempotent
                                       // The remote notices the DTLS close.
  pair
    .subscriber
    .next("Failed after remote close", |e| {
      matches!(e, TransportEvent::Failed { .. }).then_some(())
    })
    .await;
  timeout(WAIT, async { while pair.subscriber.events.recv().await.is_some() {} })
    .await
    .expect("stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sdp_is_an_error_with_a_code() {
  let (sub, _sub_events) = PeerTransport::start(TransportConfig::new(TransportRole::Subscriber, LOOPBACK))
    .await
    .unwrap();
  let (publ, _pub_events) = PeerTransport::start(TransportConfig::new(TransportRole::Publisher, LOOPBACK))
    .await
    .unwrap();
  for bad in [
    "",
    "garbage",
    "v=0\r\n",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
  ] {
    let e = sub.apply_offer(bad).await.unwrap_err();
    assert_eq!(e.code(), "ERR_SDP", "{bad:?}: {e}");
  }
  // An answer with no offer outstanding.
  let offer = publ.create_offer(false).await.unwrap();
  let answer = sub.apply_offer(&offer).await.unwrap();
  publ.apply_answer(&answer).await.unwrap();
  let e = publ.apply_answer(&answer).await.unwrap_err();
  assert_eq!(e.code(), "ERR_NEGOTIATION_STATE");
  let e = publ.apply_answer("nonsense").await.unwrap_err();
  assert_eq!(e.code(), "ERR_SDP");
  // Nothing changed since: no offer to make; ICE restart is a change.
  assert_eq!(
    publ.create_offer(false).await.unwrap_err().code(),
    "ERR_NOTHING_TO_NEGOTIATE"
  );
  assert!(publ.create_offer(true).await.is_ok());
  // Role checks.
  assert_eq!(publ.apply_offer(&offer).await.unwrap_err().code(), "ERR_WRONG_ROLE");
  assert_eq!(sub.create_offer(false).await.unwrap_err().code(), "ERR_WRONG_ROLE");
  assert_eq!(publ.add_remote_candidate("{").unwrap_err().code(), "ERR_ICE_CANDIDATE");
  let unspecified = TransportConfig::new(TransportRole::Publisher, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
  assert_eq!(PeerTransport::start(unspecified).await.unwrap_err().code(), "ERR_IO");
  publ.close().await;
  sub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renegotiation_adds_and_removes_tracks() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  // A second track while connected.
  let second = pair
    .publisher
    .handle
    .add_video_track("PA_pub|TR_screen", "TR_screen", VideoCodec::H264, &[])
    .await
    .unwrap();
  assert_ne!(second, pair.pub_mid);
  pair
    .publisher
    .next("NegotiationNeeded", |e| {
      matches!(e, TransportEvent::NegotiationNeeded).then_some(())
    })
    .await;
  let offer = pair.publisher.handle.create_offer(false).await.unwrap();
  assert_first_video_codec(&offer, VideoCodec::H264);
  let answer = pair.subscriber.handle.apply_offer(&offer).await.unwrap();
  pair.publisher.handle.apply_answer(&answer).await.unwrap();
  let (sub_second, track_id, codec) = pair
    .subscriber
    .next("second TrackAdded", |e| match e {
      TransportEvent::TrackAdded {
        mid, track_id, codec, ..
      } => Some((mid, track_id, codec)),
      _ => None,
    })
    .await;
  assert_eq!(track_id, "TR_screen");
  assert_eq!(codec, VideoCodec::H264);
  assert_ne!(sub_second, pair.sub_mid);

  // Media flows on the new track.
  pair.publisher.handle.write_video(
    second,
    OutgoingVideoFrame {
      data: vec![0, 0, 0, 1, 0x65, 1, 2, 3, 4, 5],
      keyframe: true,
      capture_time_us: 0,
      rotation: 0,
      rid: None,
      trailer_len: 0,
    },
  );
  let mid = pair
    .subscriber
    .next("frame on the second track", |e| match e {
      TransportEvent::VideoFrame { mid, .. } => Some(mid),
      _ => None,
    })
    .await;
  assert_eq!(mid, sub_second);

  // Removing the first track stops its m-line on the other side.
  pair.publisher.handle.remove_track(pair.pub_mid).await.unwrap();
  let offer = pair.publisher.handle.create_offer(false).await.unwrap();
  let answer = pair.subscriber.handle.apply_offer(&offer).await.unwrap();
  pair.publisher.handle.apply_answer(&answer).await.unwrap();
  let removed = pair
    .subscriber
    .next("TrackRemoved", |e| match e {
      TransportEvent::TrackRemoved { mid } => Some(mid),
      _ => None,
    })
    .await;
  assert_eq!(removed, pair.sub_mid);
  assert_eq!(
    pair
      .publisher
      .handle
      .remove_track(pair.pub_mid)
      .await
      .unwrap_err()
      .code(),
    "ERR_UNKNOWN_TRACK"
  );

  // One offer at a time: a change made while an offer is in flight waits for its answer.
  pair
    .publisher
    .handle
    .add_video_track("PA_pub|TR_3", "TR_3", VideoCodec::Vp8, &[])
    .await
    .unwrap();
  let offer = pair.publisher.handle.create_offer(false).await.unwrap();
  pair
    .publisher
    .handle
    .add_video_track("PA_pub|TR_4", "TR_4", VideoCodec::Vp8, &[])
    .await
    .unwrap();
  let e = pair.publisher.handle.create_offer(false).await.unwrap_err();
  assert_eq!(e.code(), "ERR_NEGOTIATION_STATE");
  while pair.publisher.events.try_recv().is_ok() {}
  let answer = pair.subscriber.handle.apply_offer(&offer).await.unwrap();
  pair.publisher.handle.apply_answer(&answer).await.unwrap();
  pair
    .publisher
    .next("NegotiationNeeded after the answer", |e| {
      matches!(e, TransportEvent::NegotiationNeeded).then_some(())
    })
    .await;

  // An answer to a superseded offer (ICE restart rolled it back) is refused.
  let (other, _other_events) = PeerTransport::start(TransportConfig::new(TransportRole::Subscriber, LOOPBACK))
    .await
    .unwrap();
  let stale_offer = pair.publisher.handle.create_offer(false).await.unwrap();
  let stale_answer = other.apply_offer(&stale_offer).await.unwrap();
  other.close().await;
  let offer = pair.publisher.handle.create_offer(true).await.unwrap();
  let e = pair.publisher.handle.apply_answer(&stale_answer).await.unwrap_err();
  assert_eq!(e.code(), "ERR_NEGOTIATION_STATE");
  let answer = pair.subscriber.handle.apply_offer(&offer).await.unwrap();
  pair.publisher.handle.apply_answer(&answer).await.unwrap();

  // An ICE restart renegotiates and the connection carries on.
  let offer = pair.publisher.handle.create_offer(true).await.unwrap();
  let answer = pair.subscriber.handle.apply_offer(&offer).await.unwrap();
  pair.publisher.handle.apply_answer(&answer).await.unwrap();
  pair
    .publisher
    .handle
    .send_data(true, b"after restart".to_vec())
    .await
    .unwrap();
  let data = pair
    .subscriber
    .next("data after ICE restart", |e| match e {
      TransportEvent::DataReceived { data, .. } => Some(data),
      _ => None,
    })
    .await;
  assert_eq!(data, b"after restart");
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_sink_takes_its_tracks_frames_off_the_event_channel() {
  let mut pair = connected_pair(VideoCodec::Vp8).await;
  let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, bool)>(16);
  pair.subscriber.handle.set_video_sink(
    pair.sub_mid,
    Some(Box::new(move |event| match event {
      TransportEvent::VideoFrame { data, keyframe, .. } => {
        let _ = frames_tx.try_send((data, keyframe));
        // The sink asks for a keyframe after the first delta.
        !keyframe
      }
      _ => false,
    })),
  );
  // Track-became-writable requests arrive on connect; drain them so the next one is the sink's.
  tokio::time::sleep(Duration::from_millis(200)).await;
  while pair.publisher.events.try_recv().is_ok() {}
  let sent: Vec<Vec<u8>> = (0..2).map(|i| vp8_frame(i, i == 0, 3000)).collect();
  for (i, data) in sent.iter().enumerate() {
    pair.publisher.handle.write_video(
      pair.pub_mid,
      OutgoingVideoFrame {
        data: data.clone(),
        keyframe: i == 0,
        capture_time_us: 1_000_000 + i as i64 * 33_333,
        rotation: 0,
        rid: None,
        trailer_len: 0,
      },
    );
    tokio::time::sleep(Duration::from_millis(33)).await;
  }
  let mid = pair
    .publisher
    .next("the sink's KeyframeRequest", |e| match e {
      TransportEvent::KeyframeRequest { mid, .. } => Some(mid),
      _ => None,
    })
    .await;
  assert_eq!(mid, pair.pub_mid);
  let received: Vec<(Vec<u8>, bool)> = (0..2).map(|_| frames_rx.recv_timeout(WAIT).unwrap()).collect();
  assert_eq!(received, vec![(sent[0].clone(), true), (sent[1].clone(), false)]);
  while let Ok(event) = pair.subscriber.events.try_recv() {
    assert!(
      !matches!(event, TransportEvent::VideoFrame { .. }),
      "a frame of a mid with a sink reached the event channel"
    );
  }
  pair.publisher.handle.close().await;
  pair.subscriber.handle.close().await;
}

#[tokio::test]
async fn a_simulcast_track_is_offered_with_a_rid_per_layer_lowest_first() {
  let (publisher, _peer) = start(TransportRole::Publisher).await;
  let rids: Vec<String> = ["q", "h", "f"].iter().map(|r| r.to_string()).collect();
  publisher
    .handle
    .add_video_track("PA_pub|TR_sim", "TR_sim", VideoCodec::Vp8, &rids)
    .await
    .unwrap();
  let offer = publisher.handle.create_offer(false).await.unwrap();
  let video = &offer[offer.find("m=video").expect("a video m-line")..];
  for rid in ["q", "h", "f"] {
    assert!(video.contains(&format!("a=rid:{rid} send")), "rid {rid} in {video}");
  }
  assert!(video.contains("a=simulcast:send q;h;f"), "{video}");
  assert!(
    video.contains("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
    "{video}"
  );
}
