//! `wss://` for real: a TLS-terminating proxy on loopback in front of a livekit-server, with a CA
//! and server certificates made at test time. Only signalling goes through the proxy; media (UDP)
//! goes to the server directly. The CA is trusted through `RoomOptions::ca_certificates`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{next_event, room_name, token, TestServer};
use lkrtc_rtc::video_source::now_us;
use lkrtc_rtc::{
  LocalVideoTrack, Room, RoomEvent, RoomOptions, TrackPublishOptions, VideoBufferType, VideoFrame, VideoRotation,
  VideoSource, VideoSourceOptions, VideoStream, VideoStreamOptions,
};
use rcgen::{
  BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A certificate authority made for one test.
struct TestCa {
  pem: String,
  der: CertificateDer<'static>,
  issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
  fn new(name: &str) -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCa {
      pem: cert.pem(),
      der: cert.der().clone(),
      issuer: Issuer::new(params, key),
    }
  }

  /// A server certificate for `names` (DNS names or IP addresses) and its key, with the chain
  /// up to this CA.
  fn server_certificate(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &self.issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![cert.der().clone(), self.der.clone()], key)
  }
}

/// Accepts TLS on a free loopback port and forwards the decrypted bytes to the livekit-server's
/// HTTP port. Stops accepting when dropped.
struct TlsProxy {
  port: u16,
  accept: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
  async fn start(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, upstream_port: u16) -> TlsProxy {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
      .with_safe_default_protocol_versions()
      .unwrap()
      .with_no_client_auth()
      .with_single_cert(chain, key)
      .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
      while let Ok((socket, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
          // A client that refuses the certificate ends the handshake here.
          let Ok(mut tls) = acceptor.accept(socket).await else {
            return;
          };
          let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
            return;
          };
          let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
        });
      }
    });
    TlsProxy { port, accept }
  }

  fn url(&self) -> String {
    format!("wss://127.0.0.1:{}", self.port)
  }
}

impl Drop for TlsProxy {
  fn drop(&mut self) {
    self.accept.abort();
  }
}

/// A livekit-server behind a TLS proxy whose certificate, for `names`, is signed by `ca`.
async fn server_behind_tls(ca: &TestCa, names: &[&str]) -> (TestServer, TlsProxy) {
  let server = TestServer::start();
  let (chain, key) = ca.server_certificate(names);
  let proxy = TlsProxy::start(chain, key, server.http_port).await;
  (server, proxy)
}

fn trusting(ca: &TestCa) -> RoomOptions {
  RoomOptions {
    ca_certificates: Some(ca.pem.clone()),
    ..Default::default()
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_connects_when_the_servers_ca_is_given() {
  let ca = TestCa::new("lkrtc test CA");
  let (_server, proxy) = server_behind_tls(&ca, &["127.0.0.1", "localhost"]).await;
  let room = room_name("tls");
  let (r, _events) = Room::connect(&proxy.url(), &token("alice", &room), trusting(&ca))
    .await
    .expect("connect over wss");
  assert_eq!(r.name(), room);
  assert_eq!(r.local_participant().identity(), "alice");
  assert!(r.is_connected());
  r.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_without_the_ca_is_a_tls_error_saying_the_issuer_is_untrusted() {
  let ca = TestCa::new("lkrtc test CA");
  let (_server, proxy) = server_behind_tls(&ca, &["127.0.0.1"]).await;
  let started = Instant::now();
  let err = Room::connect(&proxy.url(), &token("alice", &room_name("tls")), RoomOptions::default())
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TLS", "{err}");
  let message = err.to_string();
  assert!(message.contains(&format!("127.0.0.1:{}", proxy.port)), "{message}");
  assert!(
    message.contains("not signed by a trusted certificate authority"),
    "{message}"
  );
  assert!(
    started.elapsed() < Duration::from_secs(3),
    "took {:?}",
    started.elapsed()
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_another_cas_certificate_is_a_tls_error() {
  let server_ca = TestCa::new("the server's CA");
  let other_ca = TestCa::new("another CA");
  let (_server, proxy) = server_behind_tls(&server_ca, &["127.0.0.1"]).await;
  let err = Room::connect(&proxy.url(), &token("alice", &room_name("tls")), trusting(&other_ca))
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TLS", "{err}");
  assert!(
    err
      .to_string()
      .contains("not signed by a trusted certificate authority"),
    "{err}"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_certificate_for_another_host_is_a_tls_error_naming_the_host() {
  let ca = TestCa::new("lkrtc test CA");
  let (_server, proxy) = server_behind_tls(&ca, &["livekit.example.com"]).await;
  let err = Room::connect(&proxy.url(), &token("alice", &room_name("tls")), trusting(&ca))
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TLS", "{err}");
  assert!(
    err.to_string().contains("not valid for the host name \"127.0.0.1\""),
    "{err}"
  );
}

/// A self-signed server certificate, trusted as its own CA; `is_ca` marks it `CA:TRUE`.
fn self_signed(is_ca: bool) -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
  let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
  params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
  if is_ca {
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
  }
  let key = KeyPair::generate().unwrap();
  let cert = params.self_signed(&key).unwrap();
  let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
  (cert.pem(), vec![cert.der().clone()], key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_connects_to_a_self_signed_server_whose_certificate_is_given() {
  let server = TestServer::start();
  let (pem, chain, key) = self_signed(false);
  let proxy = TlsProxy::start(chain, key, server.http_port).await;
  let options = RoomOptions {
    ca_certificates: Some(pem),
    ..Default::default()
  };
  let (r, _events) = Room::connect(&proxy.url(), &token("alice", &room_name("tls")), options)
    .await
    .expect("connect over wss");
  assert!(r.is_connected());
  r.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_self_signed_ca_certificate_is_a_tls_error_explaining_why() {
  let server = TestServer::start();
  let (pem, chain, key) = self_signed(true);
  let proxy = TlsProxy::start(chain, key, server.http_port).await;
  let options = RoomOptions {
    ca_certificates: Some(pem),
    ..Default::default()
  };
  let err = Room::connect(&proxy.url(), &token("alice", &room_name("tls")), options)
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TLS", "{err}");
  assert!(
    err
      .to_string()
      .contains("is a CA certificate (basicConstraints CA:TRUE)"),
    "{err}"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plain_http_port_is_a_tls_error() {
  let server = TestServer::start();
  let url = format!("wss://127.0.0.1:{}", server.http_port);
  let err = Room::connect(&url, &token("alice", &room_name("tls")), RoomOptions::default())
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_TLS", "{err}");
  assert!(err.to_string().contains("does the server speak TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ca_certificates_fail_before_any_connection_attempt() {
  // Nobody listens there: any I/O would fail with ERR_CONNECTION_REFUSED instead.
  let port = std::net::TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port();
  let options = RoomOptions {
    ca_certificates: Some("not a certificate".into()),
    ..Default::default()
  };
  let err = Room::connect(&format!("wss://127.0.0.1:{port}"), "token", options)
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_INVALID_CERTIFICATE", "{err}");
  assert!(err.to_string().contains("-----BEGIN CERTIFICATE-----"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_room_resumes_over_tls_after_losing_its_signal_connection() {
  let ca = TestCa::new("lkrtc test CA");
  let (_server, proxy) = server_behind_tls(&ca, &["127.0.0.1"]).await;
  let (room, mut events) = Room::connect(&proxy.url(), &token("alice", &room_name("tls-resume")), trusting(&ca))
    .await
    .expect("connect over wss");
  room.simulate_signal_loss();
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnected)).await;
  assert!(room.is_connected());
  room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_published_by_a_wss_participant_reaches_another_participant() {
  const W: u32 = 160;
  const H: u32 = 120;
  let ca = TestCa::new("lkrtc test CA");
  let (server, proxy) = server_behind_tls(&ca, &["127.0.0.1"]).await;
  let room = room_name("tls-media");
  let (alice, _alice_events) = Room::connect(&proxy.url(), &token("alice", &room), trusting(&ca))
    .await
    .expect("alice connects over wss");
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), RoomOptions::default())
    .await
    .expect("bob connects over ws");
  let source = VideoSource::new(W, H, VideoSourceOptions::default()).unwrap();
  let track = LocalVideoTrack::create_video_track("camera", &source);
  alice
    .local_participant()
    .publish_track(&track, TrackPublishOptions::default())
    .await
    .expect("publish over wss");

  let stop = Arc::new(AtomicBool::new(false));
  let feeder = {
    let (source, stop) = (source.clone(), stop.clone());
    std::thread::spawn(move || {
      let mut data = vec![255u8; (W * H * 4) as usize];
      for px in data.chunks_exact_mut(4) {
        px[..3].copy_from_slice(&[0, 0, 255]);
      }
      let frame = VideoFrame::new(W, H, VideoBufferType::RGBA, data).unwrap();
      while !stop.load(Ordering::Relaxed) {
        if source
          .capture_frame(&frame.as_ref(), now_us(), VideoRotation::Rotation0)
          .is_err()
        {
          return;
        }
        std::thread::sleep(Duration::from_millis(66));
      }
    })
  };
  let track = match next_event(&mut bob_events, 15, |e| matches!(e, RoomEvent::TrackSubscribed { .. })).await {
    RoomEvent::TrackSubscribed { track, participant, .. } => {
      assert_eq!(participant.identity, "alice");
      track
    }
    _ => unreachable!(),
  };
  let mut stream = VideoStream::new(
    &track,
    VideoStreamOptions {
      capacity: 0,
      format: Some(VideoBufferType::RGBA),
      size: None,
    },
  );
  let event = tokio::time::timeout(Duration::from_secs(15), stream.next())
    .await
    .expect("a frame in time")
    .expect("the stream is open");
  stop.store(true, Ordering::Relaxed);
  feeder.join().unwrap();
  assert_eq!((event.frame.width(), event.frame.height()), (W, H));
  // Mostly blue: the picture made it through encoder, server and decoder.
  let data = event.frame.data();
  let pixels = data.chunks_exact(4).count() as f64;
  let mean = |c: usize| data.chunks_exact(4).map(|p| f64::from(p[c])).sum::<f64>() / pixels;
  assert!(
    mean(2) > 180.0 && mean(0) < 60.0 && mean(1) < 60.0,
    "mean rgb {:?}",
    [mean(0), mean(1), mean(2)]
  );
  bob.disconnect().await;
  alice.disconnect().await;
}
