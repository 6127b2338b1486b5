//! Media path loss: every UDP packet on loopback is dropped for a while (an nftables rule),
//! and with it the server's ICE-TCP port, while the signal connection (TCP) lives on; or UDP
//! alone is dropped, and media moves to ICE-TCP. The tests run in a network namespace of their own,
//! made by re-running this test binary under `unshare --net` (needs root), so the host's loopback
//! is never touched: livekit-server, publisher and subscriber all live in that namespace.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::media::{frames_of, red_session, RedSession, BLUE};
use common::{room_name, TestServer};

const INSIDE: &str = "LKRTC_TEST_NETNS";

/// Runs the named test again inside a new network namespace and returns true; returns false when
/// already inside, where the caller runs the test body.
fn run_isolated(name: &str) -> bool {
  if std::env::var_os(INSIDE).is_some() {
    return false;
  }
  // SAFETY: geteuid has no preconditions.
  if unsafe { libc_geteuid() } != 0 {
    eprintln!("{name}: skipped, creating a network namespace needs root");
    return true;
  }
  let exe = std::env::current_exe().unwrap();
  let status = Command::new(system_tool("unshare"))
    .args(["--net", "--", "sh", "-c"])
    .arg(format!(
      "{} link set lo up && exec \"$0\" \"$@\"",
      system_tool("ip").display()
    ))
    .arg(&exe)
    .args(["--exact", name, "--nocapture", "--test-threads=1"])
    .env(INSIDE, "1")
    .status()
    .expect("run unshare");
  assert!(status.success(), "{name} failed inside its network namespace: {status}");
  true
}

extern "C" {
  #[link_name = "geteuid"]
  fn libc_geteuid() -> u32;
}

/// The system's own binary: under `npm test`, node_modules/.bin comes first on PATH and holds
/// an unrelated `nft` (a Node file tracer).
fn system_tool(name: &str) -> std::path::PathBuf {
  ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    .iter()
    .map(|dir| std::path::Path::new(dir).join(name))
    .find(|path| path.exists())
    .unwrap_or_else(|| name.into())
}

fn nft(args: &[&str]) {
  let status = Command::new(system_tool("nft"))
    .args(args)
    .status()
    .expect("run nft (Debian package nftables)");
  assert!(status.success(), "nft {args:?}: {status}");
}

/// Drops every UDP packet arriving on this namespace's interfaces (lo) until `restore_udp`:
/// senders see no error, the packets just vanish. With `ice_tcp_port`, also every packet to or
/// from that TCP port, so media has no path left at all.
fn drop_udp(ice_tcp_port: Option<u16>) {
  nft(&["add", "table", "inet", "lkrtc_test"]);
  nft(&[
    "add",
    "chain",
    "inet",
    "lkrtc_test",
    "input",
    "{ type filter hook input priority 0; }",
  ]);
  nft(&[
    "add",
    "rule",
    "inet",
    "lkrtc_test",
    "input",
    "meta",
    "l4proto",
    "udp",
    "drop",
  ]);
  if let Some(port) = ice_tcp_port {
    for dir in ["dport", "sport"] {
      let port = port.to_string();
      nft(&["add", "rule", "inet", "lkrtc_test", "input", "tcp", dir, &port, "drop"]);
    }
  }
}

fn restore_udp() {
  nft(&["delete", "table", "inet", "lkrtc_test"]);
}

/// Publisher and subscriber exchange red; the media path (UDP and ICE-TCP) goes dark for
/// `outage` while the publisher turns blue; blue must arrive on the same stream afterwards. Returns the kinds of the events both
/// rooms reported meanwhile.
async fn video_survives_a_udp_outage(outage: Duration) -> Vec<String> {
  let server = TestServer::start();
  let RedSession {
    alice,
    mut alice_events,
    publication,
    feeder,
    bob,
    mut bob_events,
    remote,
    mut stream,
    ..
  } = red_session(&server, &room_name("udp"), 10).await;

  drop_udp(Some(server.tcp_port));
  feeder.colour.store(1, Ordering::Relaxed);
  // Frames in flight may still land in the first half second; after that, none may.
  let dark_from = Instant::now() + Duration::from_millis(500);
  let outage_end = tokio::time::Instant::now() + outage;
  let mut during = 0;
  while let Ok(Some(_)) = tokio::time::timeout_at(outage_end, stream.next()).await {
    if Instant::now() > dark_from {
      during += 1;
    }
  }
  assert_eq!(during, 0, "frames arrived while UDP was dropped");
  let encoded_in_outage = alice
    .local_participant()
    .publish_stats(&publication.sid)
    .map(|s| s.frames_encoded);
  restore_udp();
  let restored = Instant::now();
  let blue = frames_of(&mut stream, BLUE.1, 30, 30).await;
  eprintln!(
    "{outage:?} without UDP: 30 blue frames {:?} after it came back (encoded so far {encoded_in_outage:?})",
    restored.elapsed()
  );
  assert!(blue.windows(2).all(|w| w[1] > w[0]), "timestamps increase: {blue:?}");
  assert!(!remote.is_ended(), "the same track carries on");

  let mut seen = Vec::new();
  for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
    while let Ok(event) = events.try_recv() {
      let kind = format!("{event:?}");
      let kind = kind.split([' ', '{', '(']).next().unwrap_or_default();
      seen.push(format!("{who}:{kind}"));
    }
  }
  eprintln!("events: {seen:?}");
  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
  seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_resumes_after_a_two_second_udp_outage() {
  if run_isolated("video_resumes_after_a_two_second_udp_outage") {
    return;
  }
  let seen = video_survives_a_udp_outage(Duration::from_secs(2)).await;
  assert!(
    !seen
      .iter()
      .any(|e| e.ends_with(":Reconnecting") || e.ends_with(":Disconnected")),
    "ICE rides out a short outage by itself: {seen:?}"
  );
}

/// Long enough for the ICE path to be declared down: both rooms restart ICE (a resume) and the
/// same track carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_resumes_after_a_twelve_second_udp_outage_through_an_ice_restart() {
  if run_isolated("video_resumes_after_a_twelve_second_udp_outage_through_an_ice_restart") {
    return;
  }
  let seen = video_survives_a_udp_outage(Duration::from_secs(12)).await;
  for who in ["alice", "bob"] {
    assert!(
      seen.contains(&format!("{who}:Reconnected")),
      "{who} restarted its ICE path: {seen:?}"
    );
  }
  assert!(!seen.iter().any(|e| e.ends_with(":Disconnected")), "{seen:?}");
}

/// UDP alone goes dark and stays dark: media moves to the server's ICE-TCP port (after the
/// resume that restarts ICE, at the latest) and blue arrives on the same stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_moves_to_ice_tcp_when_udp_is_blocked_midway() {
  if run_isolated("video_moves_to_ice_tcp_when_udp_is_blocked_midway") {
    return;
  }
  let server = TestServer::start();
  let RedSession {
    alice,
    mut alice_events,
    feeder,
    bob,
    mut bob_events,
    remote,
    mut stream,
    ..
  } = red_session(&server, &room_name("tcp"), 10).await;
  drop_udp(None);
  let blocked = Instant::now();
  feeder.colour.store(1, Ordering::Relaxed);
  let blue = frames_of(&mut stream, BLUE.1, 30, 40).await;
  eprintln!("UDP blocked: 30 blue frames over TCP {:?} later", blocked.elapsed());
  assert!(blue.windows(2).all(|w| w[1] > w[0]), "timestamps increase: {blue:?}");
  assert!(!remote.is_ended(), "the same track carries on");
  for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
    while let Ok(event) = events.try_recv() {
      let kind = format!("{event:?}");
      eprintln!("{who}: {}", kind.split([' ', '{', '(']).next().unwrap_or_default());
    }
  }
  restore_udp();
  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

/// UDP is dark before anyone joins: both rooms connect over ICE-TCP and video flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_connects_and_streams_over_ice_tcp_when_udp_is_blocked() {
  if run_isolated("a_room_connects_and_streams_over_ice_tcp_when_udp_is_blocked") {
    return;
  }
  let server = TestServer::start();
  drop_udp(None);
  let started = Instant::now();
  let RedSession {
    alice,
    feeder,
    bob,
    mut stream,
    ..
  } = red_session(&server, &room_name("tcp"), 30).await;
  eprintln!(
    "UDP blocked: connected and 30 frames over TCP in {:?}",
    started.elapsed()
  );
  feeder.colour.store(1, Ordering::Relaxed);
  let blue = frames_of(&mut stream, BLUE.1, 30, 15).await;
  assert!(blue.windows(2).all(|w| w[1] > w[0]), "timestamps increase: {blue:?}");
  restore_udp();
  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}
