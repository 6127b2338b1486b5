//! Access tokens and API secrets never reach a log line (at debug level, from lkrtc or any crate
//! under it) or an error message: on a successful join, a refused token, a refusal that quotes
//! the token back, and a resume.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Mutex, Once};
use std::time::Duration;

use common::{next_event, room_name, TestServer};
use lkrtc_rtc::{create_token, Room, RoomEvent, RoomOptions, RtcError, TokenOptions};

/// Every log record of this test process, formatted.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
  fn enabled(&self, metadata: &log::Metadata) -> bool {
    metadata.level() <= log::Level::Debug
  }

  fn log(&self, record: &log::Record) {
    if self.enabled(record.metadata()) {
      let line = format!("{} {} {}", record.level(), record.target(), record.args());
      LINES.lock().unwrap().push(line);
    }
  }

  fn flush(&self) {}
}

fn capture_logs() {
  static INSTALL: Once = Once::new();
  INSTALL.call_once(|| {
    log::set_logger(&Capture).expect("the only logger");
    log::set_max_level(log::LevelFilter::Debug);
  });
}

/// The captured lines that contain `secret`.
fn lines_containing(secret: &str) -> Vec<String> {
  LINES
    .lock()
    .unwrap()
    .iter()
    .filter(|line| line.contains(secret))
    .cloned()
    .collect()
}

fn assert_not_logged(secret: &str) {
  let leaks = lines_containing(secret);
  assert!(leaks.is_empty(), "{secret:?} was logged: {leaks:#?}");
}

fn assert_not_in_error(err: &RtcError, secret: &str) {
  let shown = format!("{err} | {err:?}");
  assert!(!shown.contains(secret), "{secret:?} is in the error: {shown}");
}

const API_KEY: &str = "lkrtc-logs-key";
const API_SECRET: &str = "lkrtc-logs-api-secret-6d1f0c9a2b7e4d3f";

fn signed(identity: &str, room: &str, api_secret: &str) -> String {
  create_token(&TokenOptions {
    api_key: API_KEY.into(),
    api_secret: api_secret.into(),
    identity: identity.into(),
    room: room.into(),
    ..Default::default()
  })
  .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_join_logs_neither_the_token_nor_the_api_secret() {
  capture_logs();
  let server = TestServer::start_with_keys(API_KEY, API_SECRET);
  let room = room_name("logs-join");
  let token = signed("alice", &room, API_SECRET);
  let (r, _events) = Room::connect(&server.url, &token, RoomOptions::default())
    .await
    .expect("connect");
  r.disconnect().await;
  // The capture works: the join itself was logged.
  assert!(
    !lines_containing(&format!("joined room {room:?}")).is_empty(),
    "no join line captured"
  );
  assert_not_logged(&token);
  assert_not_logged(API_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_with_the_wrong_secret_is_in_neither_logs_nor_the_error() {
  capture_logs();
  let server = TestServer::start_with_keys(API_KEY, API_SECRET);
  let wrong_secret = "lkrtc-logs-wrong-secret-91c7e2d4a8f3b650";
  let token = signed("mallory", &room_name("logs-unauthorized"), wrong_secret);
  let err = Room::connect(&server.url, &token, RoomOptions::default())
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_UNAUTHORIZED", "{err}");
  assert_not_in_error(&err, &token);
  assert_not_in_error(&err, wrong_secret);
  assert_not_logged(&token);
  assert_not_logged(wrong_secret);
  assert_not_logged(API_SECRET);
}

/// A server that refuses every request with `status`, quoting the request line (which carries
/// the token) in the body, or, with `quote_on_validate`, refusing the upgrade with an empty body
/// and quoting the request line only on `/rtc/validate`.
fn quoting_server(status: &'static str, quote_on_validate: bool) -> u16 {
  let listener = TcpListener::bind("127.0.0.1:0").unwrap();
  let port = listener.local_addr().unwrap().port();
  std::thread::spawn(move || {
    for socket in listener.incoming() {
      let Ok(mut socket) = socket else { return };
      let mut request = Vec::new();
      let mut buf = [0u8; 4096];
      while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf) {
          Ok(0) | Err(_) => break,
          Ok(n) => request.extend_from_slice(&buf[..n]),
        }
      }
      let request = String::from_utf8_lossy(&request).to_string();
      let line = request.lines().next().unwrap_or("").to_string();
      let body = if quote_on_validate && !line.contains("/rtc/validate") {
        String::new()
      } else {
        format!("refused: {line}")
      };
      let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
      );
      let _ = socket.write_all(response.as_bytes());
    }
  });
  port
}

async fn refused_by_quoting_server(status: &'static str, quote_on_validate: bool, token: &str) -> RtcError {
  let port = quoting_server(status, quote_on_validate);
  Room::connect(&format!("ws://127.0.0.1:{port}"), token, RoomOptions::default())
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_quotes_the_token_is_reported_without_it() {
  capture_logs();
  let token = signed("alice", &room_name("logs-quote"), API_SECRET);
  let err = refused_by_quoting_server("401 Unauthorized", false, &token).await;
  assert_eq!(err.code(), "ERR_UNAUTHORIZED", "{err}");
  // The server's words are kept, the token is not.
  assert!(
    err.to_string().contains("refused: GET /rtc?access_token=<token>"),
    "{err}"
  );
  assert_not_in_error(&err, &token);
  assert_not_logged(&token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_explained_by_rtc_validate_quoting_the_token_is_reported_without_it() {
  capture_logs();
  let token = signed("alice", &room_name("logs-validate"), API_SECRET);
  let err = refused_by_quoting_server("401 Unauthorized", true, &token).await;
  assert_eq!(err.code(), "ERR_UNAUTHORIZED", "{err}");
  assert!(
    err
      .to_string()
      .contains("refused: GET /rtc/validate?access_token=<token>"),
    "{err}"
  );
  assert_not_in_error(&err, &token);
  assert_not_logged(&token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_that_quotes_the_token_is_reported_without_it() {
  capture_logs();
  let token = signed("alice", &room_name("logs-500"), API_SECRET);
  let err = refused_by_quoting_server("500 Internal Server Error", false, &token).await;
  assert_eq!(err.code(), "ERR_SERVER", "{err}");
  assert_not_in_error(&err, &token);
  assert_not_logged(&token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_logs_no_token() {
  capture_logs();
  let server = TestServer::start_with_keys(API_KEY, API_SECRET);
  let token = signed("alice", &room_name("logs-resume"), API_SECRET);
  let (room, mut events) = Room::connect(&server.url, &token, RoomOptions::default())
    .await
    .expect("connect");
  room.simulate_signal_loss();
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnected)).await;
  room.disconnect().await;
  assert!(!lines_containing("resuming").is_empty(), "no resume line captured");
  assert_not_logged(&token);
  assert_not_logged(API_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_resume_attempts_log_no_token() {
  capture_logs();
  let server = TestServer::start_with_keys(API_KEY, API_SECRET);
  let token = signed("alice", &room_name("logs-lost"), API_SECRET);
  let (room, mut events) = Room::connect(&server.url, &token, RoomOptions::default())
    .await
    .expect("connect");
  // The server goes away: every resume attempt fails and is logged with its address.
  let address = format!("127.0.0.1:{}", server.http_port);
  drop(server);
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
  while !lines_containing(&address).iter().any(|l| l.contains("resume attempt")) {
    assert!(
      tokio::time::Instant::now() < deadline,
      "no failed resume attempt logged"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
  }
  room.disconnect().await;
  assert_not_logged(&token);
}
