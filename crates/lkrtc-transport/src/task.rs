//! The tokio side: one task per transport owns the UDP socket, the ICE-TCP connections and the
//! sans-IO [`Core`], and wakes only for a command, a packet or str0m's next timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use str0m::net::Protocol;

use crate::candidate::{parse_candidate_init, TCP_ACTIVE_PORT};
use crate::core::{Core, Poll};
use crate::tcp::{TcpEvent, TcpLinks};
use crate::turn::{parse_turn_url, TurnServer, TurnTransport};
use crate::turn_stream::{TurnStreamEvent, TurnStreams};
use crate::{Mid, OutgoingVideoFrame, TransportConfig, TransportError, TransportEvent, TransportRole, VideoCodec};

/// Kernel receive buffer: a 1080p keyframe is a burst of a few hundred packets.
const RECV_BUFFER: usize = 4 << 20;
const SEND_BUFFER: usize = 1 << 20;
/// Datagrams read per wakeup before str0m is polled again.
const RECV_BATCH: usize = 64;

type Reply<T> = oneshot::Sender<Result<T, TransportError>>;

enum Command {
  AddVideoTrack {
    stream_id: String,
    track_id: String,
    codec: VideoCodec,
    rids: Vec<String>,
    reply: Reply<Mid>,
  },
  RemoveTrack(Mid, Reply<()>),
  CreateOffer(bool, Reply<String>),
  ApplyAnswer(String, Reply<()>),
  ApplyOffer(String, Reply<String>),
  RemoteCandidate(str0m::Candidate),
  WriteVideo(Mid, OutgoingVideoFrame),
  SendData(bool, Vec<u8>, Reply<()>),
  RequestKeyframe(Mid),
  SetVideoSink(Mid, Option<VideoSink>),
  DesiredBitrate(u64, u64),
  Close(oneshot::Sender<()>),
}

/// Where a subscribed track's frames go instead of the event channel: called on the transport's
/// task with each [`TransportEvent::VideoFrame`] and [`TransportEvent::IngressStats`] of its
/// mid, so it must not block (hand the frame to a bounded queue). Returns true to ask the
/// sender for a keyframe.
pub type VideoSink = Box<dyn FnMut(TransportEvent) -> bool + Send>;

/// Where the transport's events go: video frames to their mid's sink when it has one, the rest
/// (and frames of mids without a sink) to the event channel.
struct Outlet {
  events: mpsc::UnboundedSender<TransportEvent>,
  sinks: HashMap<Mid, VideoSink>,
}

impl Outlet {
  /// Hands out the core's events; true when a sink asked for a keyframe (the core then has
  /// something to send).
  fn forward(&mut self, core: &mut Core) -> bool {
    let mut asked = Vec::new();
    for ev in core.take_events() {
      let sink = match &ev {
        TransportEvent::VideoFrame { mid, .. } | TransportEvent::IngressStats { mid, .. } => {
          self.sinks.get_mut(mid).map(|sink| (*mid, sink))
        }
        _ => None,
      };
      match sink {
        Some((mid, sink)) => {
          if sink(ev) {
            asked.push(mid);
          }
        }
        None => {
          let _ = self.events.send(ev);
        }
      }
    }
    for mid in &asked {
      core.request_keyframe(*mid);
    }
    !asked.is_empty()
  }
}

/// One WebRTC peer connection (LiveKit's publisher or subscriber PC). Same type as
/// [`TransportHandle`]; the name reads better at the construction site.
pub type PeerTransport = TransportHandle;

/// A cheap, cloneable handle to a running transport. Commands are queued to the transport's
/// task in call order; the `async` ones wait for its answer.
#[derive(Clone)]
pub struct TransportHandle {
  tx: mpsc::UnboundedSender<Command>,
  shared: Arc<Shared>,
}

struct Shared {
  role: TransportRole,
  local_addr: SocketAddr,
}

impl std::fmt::Debug for TransportHandle {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("TransportHandle")
      .field("role", &self.shared.role)
      .field("local_addr", &self.shared.local_addr)
      .finish()
  }
}

impl TransportHandle {
  /// Binds a UDP socket on `config.bind_ip` (ephemeral port) and spawns the transport's task
  /// on the current tokio runtime. Events arrive on the returned receiver; it ends when the
  /// task ends.
  pub async fn start(
    config: TransportConfig,
  ) -> Result<(TransportHandle, mpsc::UnboundedReceiver<TransportEvent>), TransportError> {
    if config.bind_ip.is_unspecified() {
      // The bind address is also the advertised host candidate, so it must be concrete.
      return Err(TransportError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("bind_ip {} is unspecified; use local_ip_for(server)", config.bind_ip),
      )));
    }
    let socket = bind_udp(SocketAddr::new(config.bind_ip, 0))?;
    let local_addr = socket.local_addr()?;
    let turn = resolve_turn_servers(&config).await;
    if config.relay_only && turn.is_empty() {
      let urls: Vec<&str> = config
        .ice_servers
        .iter()
        .flat_map(|s| s.urls.iter().map(String::as_str))
        .collect();
      return Err(TransportError::NoTurnServer(if urls.is_empty() {
        "no ICE server".to_owned()
      } else {
        urls.join(", ")
      }));
    }
    let core = Core::new(&config, local_addr, &turn, Instant::now());
    let (mut streams, stream_events) = TurnStreams::new();
    for server in &turn {
      streams.open(server, config.tls_config.clone());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(core, socket, local_addr, (streams, stream_events), rx, ev_tx));
    let shared = Arc::new(Shared {
      role: config.role,
      local_addr,
    });
    Ok((TransportHandle { tx, shared }, ev_rx))
  }

  /// The role this transport was started with.
  pub fn role(&self) -> TransportRole {
    self.shared.role
  }

  /// The bound UDP address (also the host candidate).
  pub fn local_addr(&self) -> SocketAddr {
    self.shared.local_addr
  }

  fn send(&self, cmd: Command) -> Result<(), TransportError> {
    self.tx.send(cmd).map_err(|_| TransportError::Closed)
  }

  async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, TransportError> {
    let (reply, answer) = oneshot::channel();
    self.send(make(reply))?;
    answer.await.map_err(|_| TransportError::Closed)?
  }

  /// Publisher: adds a sendonly video m-line for a track. `track_id` becomes the msid track
  /// id, which livekit-server matches to the `AddTrackRequest.cid`; `stream_id` is the msid
  /// stream. Fires `NegotiationNeeded` (after the answer, if an offer is in flight); frames
  /// written before the answer is applied and ICE is up are dropped, and `KeyframeRequest`
  /// fires when the track becomes writable. The returned mid is a stable handle for this
  /// track (not the SDP mid). Non-empty `rids` make it a simulcast track: one RTP stream per
  /// rid (lowest layer first), offered as `a=rid:<rid> send` and `a=simulcast:send q;h;f`, and
  /// each frame written names its layer.
  pub async fn add_video_track(
    &self,
    stream_id: &str,
    track_id: &str,
    codec: VideoCodec,
    rids: &[String],
  ) -> Result<Mid, TransportError> {
    let (stream_id, track_id, rids) = (stream_id.to_owned(), track_id.to_owned(), rids.to_vec());
    self
      .call(|reply| Command::AddVideoTrack {
        stream_id,
        track_id,
        codec,
        rids,
        reply,
      })
      .await
  }

  /// Publisher: stops a track's m-line (port 0 in the next offer); fires `NegotiationNeeded`
  /// as `add_video_track` does.
  pub async fn remove_track(&self, mid: Mid) -> Result<(), TransportError> {
    self.call(|reply| Command::RemoveTrack(mid, reply)).await
  }

  /// Publisher: an offer with every change not yet answered (new tracks, removed tracks, and
  /// on the first offer the `_reliable`/`_lossy` data channels); with `ice_restart`, new ICE
  /// credentials. One offer at a time: while one waits for its answer this errors with
  /// `ERR_NEGOTIATION_STATE` (safe to ignore: `NegotiationNeeded` fires again after
  /// `apply_answer` if changes remain), except with `ice_restart`, which rolls the unanswered
  /// offer back and re-offers its changes (for resume, where that offer is presumed lost).
  /// Errors with `ERR_NOTHING_TO_NEGOTIATE` when nothing changed.
  pub async fn create_offer(&self, ice_restart: bool) -> Result<String, TransportError> {
    self.call(|reply| Command::CreateOffer(ice_restart, reply)).await
  }

  /// Publisher: applies the server's answer to the last offer. An answer whose m-lines do not
  /// match that offer (a stale answer) is refused with `ERR_NEGOTIATION_STATE`.
  pub async fn apply_answer(&self, sdp: &str) -> Result<(), TransportError> {
    let sdp = sdp.to_owned();
    self.call(|reply| Command::ApplyAnswer(sdp, reply)).await
  }

  /// Subscriber: applies the server's offer and returns our answer. `TrackAdded` /
  /// `TrackRemoved` events for the changed m-lines are queued before this returns.
  pub async fn apply_offer(&self, sdp: &str) -> Result<String, TransportError> {
    let sdp = sdp.to_owned();
    self.call(|reply| Command::ApplyOffer(sdp, reply)).await
  }

  /// Both: a trickled remote candidate as LiveKit's `candidate_init` JSON. UDP and passive TCP
  /// candidates are used; an empty candidate (end of candidates) and any other kind are
  /// accepted and ignored.
  pub fn add_remote_candidate(&self, candidate_init_json: &str) -> Result<(), TransportError> {
    match parse_candidate_init(candidate_init_json)? {
      Some(c) => self.send(Command::RemoteCandidate(c)),
      None => Ok(()),
    }
  }

  /// Publisher: queues one encoded frame; str0m packetizes it (RFC 7741 / RFC 6184 mode 1)
  /// and paces it out. Dropped silently before the track is negotiated and connected.
  pub fn write_video(&self, mid: Mid, frame: OutgoingVideoFrame) {
    let _ = self.send(Command::WriteVideo(mid, frame));
  }

  /// Sends a message on `_reliable` (true) or `_lossy` (false). Messages that SCTP cannot take
  /// yet (channel not open, send buffer full) wait in order; past 4 MiB waiting per channel the
  /// send is refused with [`TransportError::DataBacklog`]. The message is handed to the
  /// transport's task before this returns, so messages keep the order of the calls even when
  /// the returned futures are awaited in another order (or on other tasks).
  pub fn send_data(
    &self,
    reliable: bool,
    data: Vec<u8>,
  ) -> impl std::future::Future<Output = Result<(), TransportError>> + Send + 'static {
    let (reply, answer) = oneshot::channel();
    let sent = self.send(Command::SendData(reliable, data, reply));
    async move {
      sent?;
      answer.await.map_err(|_| TransportError::Closed)?
    }
  }

  /// Subscriber: asks the sender of the m-line `mid` for a keyframe (PLI, else FIR).
  pub fn request_keyframe(&self, mid: Mid) {
    let _ = self.send(Command::RequestKeyframe(mid));
  }

  /// Subscriber: from now on the frames of m-line `mid` go to `sink` (not the event channel),
  /// straight from the transport's task, so a slow event consumer never queues media; `None`
  /// sends them back to the event channel.
  pub fn set_video_sink(&self, mid: Mid, sink: Option<VideoSink>) {
    let _ = self.send(Command::SetVideoSink(mid, sink));
  }

  /// Publisher: the rate the media could use at most (the sum of the tracks' max bitrates). The
  /// bandwidth estimator probes towards it and not beyond, so an idle link is not flooded with
  /// probes for capacity the encoders would never use. No effect without estimation.
  ///
  /// `padding_bps`: while the media sends less, the pacer fills up to this rate (never above
  /// the estimate) with padding, so the estimate can grow to what a paused simulcast layer
  /// needs although the encoders do not use it yet (libwebrtc pads likewise).
  pub fn set_desired_bitrate(&self, bps: u64, padding_bps: u64) {
    let _ = self.send(Command::DesiredBitrate(bps, padding_bps));
  }

  /// Closes the connection (RTCP BYE, DTLS close_notify), then ends the task, closing the
  /// socket and the event channel. Returns when that is done; harmless if already closed.
  pub async fn close(&self) {
    let (done, wait) = oneshot::channel();
    if self.send(Command::Close(done)).is_ok() {
      let _ = wait.await;
    }
  }
}

/// Microseconds since the Unix epoch (the clock of capture timestamps and sender reports).
fn unix_now_us() -> i64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map(|d| d.as_micros() as i64)
    .unwrap_or(0)
}

/// TURN allocations made per transport at most (LiveKit lists one per node IP).
const MAX_TURN_SERVERS: usize = 4;
/// How long resolving one TURN host name may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The TURN URLs of the ICE servers, resolved to an address of the socket's family. A name that
/// does not resolve is skipped (logged), and so is `turns:` without a TLS configuration: the
/// other servers, or the direct path, may still work.
async fn resolve_turn_servers(config: &TransportConfig) -> Vec<TurnServer> {
  let mut out: Vec<TurnServer> = Vec::new();
  for server in &config.ice_servers {
    for url in &server.urls {
      let Some((host, port, transport)) = parse_turn_url(url) else {
        tracing::debug!(%url, "ICE server URL not used (not TURN over UDP, TCP or TLS)");
        continue;
      };
      if transport == TurnTransport::Tls && config.tls_config.is_none() {
        tracing::debug!(%url, "TURN over TLS needs a TLS configuration");
        continue;
      }
      let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await;
      let addr = match found {
        Ok(Ok(mut addrs)) => addrs.find(|a| a.is_ipv4() == config.bind_ip.is_ipv4()),
        Ok(Err(e)) => {
          tracing::warn!(%url, "TURN server not resolved: {e}");
          None
        }
        Err(_) => {
          tracing::warn!(%url, "TURN server not resolved within {RESOLVE_TIMEOUT:?}");
          None
        }
      };
      let Some(addr) = addr else { continue };
      if out.len() < MAX_TURN_SERVERS && !out.iter().any(|s| s.addr == addr) {
        out.push(TurnServer {
          addr,
          transport,
          host: host.clone(),
          username: server.username.clone(),
          password: server.credential.clone(),
        });
      }
    }
  }
  out
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, TransportError> {
  use socket2::{Domain, Protocol, Socket, Type};
  let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
  // Best effort: the kernel caps these at net.core.rmem_max / wmem_max.
  let _ = socket.set_recv_buffer_size(RECV_BUFFER);
  let _ = socket.set_send_buffer_size(SEND_BUFFER);
  socket.set_nonblocking(true)?;
  socket.bind(&addr.into())?;
  Ok(UdpSocket::from_std(socket.into())?)
}

/// Due timeouts handled one after another before the loop looks at commands and sockets again.
const MAX_DUE_IN_A_ROW: u32 = 64;

async fn run(
  mut core: Core,
  socket: UdpSocket,
  local_addr: SocketAddr,
  (mut streams, mut stream_events): (TurnStreams, mpsc::Receiver<TurnStreamEvent>),
  mut commands: mpsc::UnboundedReceiver<Command>,
  events: mpsc::UnboundedSender<TransportEvent>,
) {
  let mut buf = vec![0u8; 2048];
  let (mut tcp, mut tcp_events) = TcpLinks::new();
  // What str0m knows the ICE-TCP connections' packets by: the active candidate's address.
  let tcp_local = SocketAddr::new(local_addr.ip(), TCP_ACTIVE_PORT);
  let mut closers: Vec<oneshot::Sender<()>> = Vec::new();
  let mut commands_done = false;
  let mut outlet = Outlet {
    events,
    sinks: HashMap::new(),
  };
  let mut due_in_a_row = 0;
  loop {
    let deadline = loop {
      let deadline = loop {
        match core.poll(Instant::now()) {
          Poll::Transmit(Protocol::Udp, dest, data) => {
            if let Err(e) = socket.send_to(&data, dest).await {
              tracing::debug!(%dest, "send_to: {e}");
            }
          }
          Poll::Transmit(Protocol::Tcp, dest, data) => tcp.send(dest, &data),
          Poll::Transmit(proto, dest, _) => tracing::trace!(%dest, ?proto, "no socket for this protocol"),
          Poll::TurnStream(server, data) => streams.send(server, data),
          Poll::Timeout(at) => break Some(at),
          Poll::Dead => break None,
        }
      };
      // A keyframe request from a sink is sent at once.
      let asked = outlet.forward(&mut core);
      if deadline.is_none() || !asked {
        break deadline;
      }
    };
    let Some(deadline) = deadline else { break };
    // A timeout already due is handled at once: str0m's pacer lets one packet out and asks to
    // be woken a microsecond later, and tokio's timer wakes at millisecond ticks, which would
    // cap a connection at about a thousand packets a second. Bounded, so commands and incoming
    // packets still get their turn.
    let now = Instant::now();
    if deadline <= now && due_in_a_row < MAX_DUE_IN_A_ROW {
      due_in_a_row += 1;
      core.handle_timeout(now);
      continue;
    }
    due_in_a_row = 0;

    tokio::select! {
      cmd = commands.recv(), if !commands_done => match cmd {
        Some(cmd) => handle(&mut core, cmd, &mut closers, &mut outlet),
        None => {
          // Every handle is gone: nobody can use or close this transport any more.
          commands_done = true;
          core.close(Instant::now());
        }
      },
      r = socket.recv_from(&mut buf) => match r {
        Ok((n, source)) => {
          core.handle_receive(Instant::now(), Protocol::Udp, source, local_addr, &buf[..n]);
          for _ in 0..RECV_BATCH {
            match socket.try_recv_from(&mut buf) {
              Ok((n, source)) => core.handle_receive(Instant::now(), Protocol::Udp, source, local_addr, &buf[..n]),
              Err(_) => break,
            }
          }
        }
        // e.g. ICMP port unreachable surfacing as ECONNREFUSED: not fatal for ICE.
        Err(e) => tracing::trace!("recv_from: {e}"),
      },
      Some(ev) = tcp_events.recv() => match ev {
        TcpEvent::Packet(source, data) => {
          core.handle_receive(Instant::now(), Protocol::Tcp, source, tcp_local, &data);
          for _ in 0..RECV_BATCH {
            match tcp_events.try_recv() {
              Ok(TcpEvent::Packet(source, data)) => core.handle_receive(Instant::now(), Protocol::Tcp, source, tcp_local, &data),
              Ok(TcpEvent::Closed(id)) => tcp.closed(id),
              Err(_) => break,
            }
          }
        }
        TcpEvent::Closed(id) => tcp.closed(id),
      },
      Some(ev) = stream_events.recv() => match ev {
        TurnStreamEvent::Message(server, data) => core.handle_turn_stream(Instant::now(), server, &data),
        TurnStreamEvent::Closed(server, why) => {
          streams.closed(server);
          core.turn_stream_closed(server, &why);
        }
      },
      _ = tokio::time::sleep_until(deadline.into()) => core.handle_timeout(Instant::now()),
    }
  }
  drop(socket);
  drop(tcp);
  drop(streams);
  // Answer whatever is still queued so no caller waits forever.
  commands.close();
  while let Ok(cmd) = commands.try_recv() {
    if let Command::Close(done) = cmd {
      closers.push(done);
    }
  }
  drop(outlet);
  for done in closers {
    let _ = done.send(());
  }
}

/// Runs one command. Events it caused are forwarded before its reply is sent, so a caller
/// that awaited e.g. `apply_offer` finds the resulting `TrackAdded` already in the channel.
fn handle(core: &mut Core, cmd: Command, closers: &mut Vec<oneshot::Sender<()>>, events: &mut Outlet) {
  fn answer<T>(core: &mut Core, events: &mut Outlet, reply: Reply<T>, r: Result<T, TransportError>) {
    // A keyframe request is sent when the task polls the core next, right after this.
    events.forward(core);
    let _ = reply.send(r);
  }
  let now = Instant::now();
  match cmd {
    Command::AddVideoTrack {
      stream_id,
      track_id,
      codec,
      rids,
      reply,
    } => {
      let r = core.add_video_track(&stream_id, &track_id, codec, rids);
      answer(core, events, reply, r);
    }
    Command::RemoveTrack(mid, reply) => {
      let r = core.remove_track(mid);
      answer(core, events, reply, r);
    }
    Command::CreateOffer(ice_restart, reply) => {
      let r = core.create_offer(ice_restart);
      answer(core, events, reply, r);
    }
    Command::ApplyAnswer(sdp, reply) => {
      let r = core.apply_answer(&sdp);
      answer(core, events, reply, r);
    }
    Command::ApplyOffer(sdp, reply) => {
      let r = core.apply_offer(&sdp);
      answer(core, events, reply, r);
    }
    Command::RemoteCandidate(c) => core.add_remote_candidate(c, now),
    Command::WriteVideo(mid, frame) => core.write_video(mid, frame, now, unix_now_us()),
    Command::SendData(reliable, data, reply) => {
      let r = core.send_data(reliable, data);
      let _ = reply.send(r);
    }
    Command::RequestKeyframe(mid) => core.request_keyframe(mid),
    Command::SetVideoSink(mid, Some(sink)) => {
      events.sinks.insert(mid, sink);
    }
    Command::SetVideoSink(mid, None) => {
      events.sinks.remove(&mid);
    }
    Command::DesiredBitrate(bps, padding) => core.set_desired_bitrate(bps, padding),
    Command::Close(done) => {
      closers.push(done);
      core.close(now);
    }
  }
}
