//! Keepalive and resume against a scripted signal server: lkrtc pings at the server's interval
//! with `PingReq`; when the server falls silent it resumes with `reconnect=1&sid=..`, and a
//! `LeaveRequest` answering the resume ends the room with that reason.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use lkrtc_rtc::{Room, RoomEvent, RoomOptions};
use prost::Message as _;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

fn response(message: proto::signal_response::Message) -> Message {
  Message::Binary(proto::SignalResponse { message: Some(message) }.encode_to_vec().into())
}

fn join_response() -> Message {
  response(proto::signal_response::Message::Join(proto::JoinResponse {
    room: Some(proto::Room {
      name: "scripted".into(),
      sid: "RM_scripted".into(),
      ..Default::default()
    }),
    participant: Some(proto::ParticipantInfo {
      sid: "PA_me".into(),
      identity: "me".into(),
      ..Default::default()
    }),
    ping_interval: 1,
    ping_timeout: 2,
    ..Default::default()
  }))
}

async fn next(events: &mut UnboundedReceiver<RoomEvent>) -> RoomEvent {
  tokio::time::timeout(Duration::from_secs(10), events.recv())
    .await
    .expect("an event in time")
    .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn pings_then_resumes_a_silent_server_and_honours_its_leave() {
  let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
  let port = listener.local_addr().unwrap().port();
  let server = tokio::spawn(async move {
    // First connection: join, then read pings and never answer.
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    ws.send(join_response()).await.unwrap();
    let mut pings = 0;
    while let Some(Ok(msg)) = ws.next().await {
      if let Message::Binary(bytes) = msg {
        if let Ok(proto::SignalRequest {
          message: Some(proto::signal_request::Message::PingReq(ping)),
        }) = proto::SignalRequest::decode(bytes.as_ref())
        {
          assert!(ping.timestamp > 0);
          pings += 1;
        }
      }
    }
    // Second connection: the resume. Refuse it with a reason.
    let (tcp, _) = listener.accept().await.unwrap();
    let mut query = String::new();
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, res: Response| {
      query = req.uri().query().unwrap_or("").to_string();
      Ok(res)
    })
    .await
    .unwrap();
    let leave = proto::LeaveRequest {
      reason: proto::DisconnectReason::StateMismatch as i32,
      ..Default::default()
    };
    ws.send(response(proto::signal_response::Message::Leave(leave)))
      .await
      .unwrap();
    (pings, query)
  });

  // The scripted server speaks the signal protocol only (no ICE, no DTLS): don't wait for a
  // peer connection it can never bring up.
  let options = RoomOptions {
    wait_for_peer_connection: false,
    ..RoomOptions::default()
  };
  let (room, mut events) = Room::connect(&format!("ws://127.0.0.1:{port}"), "token", options)
    .await
    .expect("connect");
  assert_eq!(
    (room.name(), room.sid()),
    ("scripted".to_string(), "RM_scripted".to_string())
  );
  let started = Instant::now();
  loop {
    if let RoomEvent::Reconnecting = next(&mut events).await {
      break;
    }
  }
  let waited = started.elapsed();
  assert!(
    waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
    "{waited:?}"
  );
  let reason = loop {
    if let RoomEvent::Disconnected { reason } = next(&mut events).await {
      break reason;
    }
  };
  assert_eq!(reason, "STATE_MISMATCH");
  let (pings, query) = server.await.unwrap();
  assert!(pings >= 1, "at least one PingReq");
  assert!(query.contains("reconnect=1") && query.contains("sid=PA_me"), "{query}");
}
