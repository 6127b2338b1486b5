//! A real livekit-server for integration tests: loopback only, free ports, explicit dev keys,
//! log in `target/lkrtc-rtc-tests/`, killed on drop.
#![allow(dead_code)]

pub mod media;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lkrtc_rtc::{create_token, TokenOptions};

pub const API_KEY: &str = "devkey";
pub const API_SECRET: &str = "secret";

pub struct TestServer {
  child: Child,
  config: PathBuf,
  pub http_port: u16,
  /// The ICE-TCP port (`rtc.tcp_port`).
  pub tcp_port: u16,
  pub url: String,
  pub log: PathBuf,
}

fn workspace_root() -> PathBuf {
  PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    .join("../..")
    .canonicalize()
    .expect("workspace root")
}

fn free_tcp_port() -> u16 {
  TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
  UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestServer {
  /// A server with the dev keys ([`API_KEY`], [`API_SECRET`]).
  pub fn start() -> TestServer {
    Self::start_with_keys(API_KEY, API_SECRET)
  }

  /// A server that knows one API key and secret.
  pub fn start_with_keys(api_key: &str, api_secret: &str) -> TestServer {
    let root = workspace_root();
    let binary = root.join(".tools/bin/livekit-server");
    assert!(
      binary.exists(),
      "livekit-server is missing at {}: run `bash scripts/bootstrap.sh` first",
      binary.display()
    );
    let (http_port, tcp_port, udp_port) = (free_tcp_port(), free_tcp_port(), free_udp_port());
    let dir = root.join("target/lkrtc-rtc-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("livekit-{http_port}.yaml"));
    std::fs::write(
      &config,
      format!(
        "port: {http_port}
bind_addresses: [127.0.0.1]
keys: {{ {api_key}: {api_secret} }}
rtc:
  udp_port: {udp_port}
  tcp_port: {tcp_port}
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
  ips: {{ includes: [127.0.0.1/32] }}
  stun_servers: [\"127.0.0.1:3478\"]
turn: {{ enabled: false }}
logging: {{ level: debug }}
"
      ),
    )
    .unwrap();
    let log = dir.join(format!("livekit-{http_port}.log"));
    let mut server = TestServer {
      child: spawn_server(&config, &log, false),
      config,
      http_port,
      tcp_port,
      url: format!("ws://127.0.0.1:{http_port}"),
      log,
    };
    server.wait_listening();
    server
  }

  /// Kills the server (SIGKILL: no goodbye to anyone) and waits for it to be gone.
  pub fn kill(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }

  /// Starts the server again on the same ports, with no memory of the rooms it had.
  pub fn restart(&mut self) {
    self.kill();
    self.child = spawn_server(&self.config, &self.log, true);
    self.wait_listening();
  }

  fn wait_listening(&mut self) {
    let http_port = self.http_port;
    let server = self;
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
      if let Ok(Some(status)) = server.child.try_wait() {
        panic!("livekit-server exited with {status}; see {}", server.log.display());
      }
      assert!(
        Instant::now() < deadline,
        "livekit-server did not listen in time; see {}",
        server.log.display()
      );
      std::thread::sleep(Duration::from_millis(50));
    }
  }

  pub fn token(&self, identity: &str, room: &str) -> String {
    token(identity, room)
  }
}

pub fn token(identity: &str, room: &str) -> String {
  create_token(&TokenOptions {
    api_key: API_KEY.into(),
    api_secret: API_SECRET.into(),
    identity: identity.into(),
    name: Some(format!("{identity} name")),
    room: room.into(),
    ..Default::default()
  })
  .unwrap()
}

fn spawn_server(config: &std::path::Path, log: &std::path::Path, append: bool) -> Child {
  let binary = workspace_root().join(".tools/bin/livekit-server");
  let log_file = std::fs::OpenOptions::new()
    .create(true)
    .write(true)
    .append(append)
    .truncate(!append)
    .open(log)
    .unwrap();
  Command::new(&binary)
    .arg("--config")
    .arg(config)
    .stdin(Stdio::null())
    .stdout(log_file.try_clone().unwrap())
    .stderr(log_file)
    .spawn()
    .expect("start livekit-server")
}

impl Drop for TestServer {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

/// A room name unique to this process and call.
pub fn room_name(prefix: &str) -> String {
  static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
  format!(
    "{prefix}-{}-{}",
    std::process::id(),
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
  )
}

/// The next event matching `pred`, or a panic after `secs`.
pub async fn next_event(
  events: &mut tokio::sync::mpsc::UnboundedReceiver<lkrtc_rtc::RoomEvent>,
  secs: u64,
  pred: impl Fn(&lkrtc_rtc::RoomEvent) -> bool,
) -> lkrtc_rtc::RoomEvent {
  let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
  loop {
    match tokio::time::timeout_at(deadline, events.recv()).await {
      Ok(Some(event)) if pred(&event) => return event,
      Ok(Some(_)) => continue,
      Ok(None) => panic!("event stream ended"),
      Err(_) => panic!("no matching event within {secs} s"),
    }
  }
}

/// The sid of a track `identity` publishes, as `room` knows it from its join or, failing that,
/// from the next `TrackPublished` (within 15 s).
pub async fn published_track_sid(
  room: &lkrtc_rtc::Room,
  events: &mut tokio::sync::mpsc::UnboundedReceiver<lkrtc_rtc::RoomEvent>,
  identity: &str,
) -> String {
  let known = room
    .remote_participants()
    .get(identity)
    .and_then(|p| p.track_publications().into_keys().next());
  if let Some(sid) = known {
    return sid;
  }
  match next_event(
    events,
    15,
    |e| matches!(e, lkrtc_rtc::RoomEvent::TrackPublished { participant, .. } if participant.identity == identity),
  )
  .await
  {
    lkrtc_rtc::RoomEvent::TrackPublished { publication, .. } => publication.sid,
    _ => unreachable!(),
  }
}
