//! A TURN client (RFC 8656) for one server reached over UDP, sans-IO: it allocates a relayed
//! address with the long-term credentials of LiveKit's `ice_servers` (first request without
//! them, then again with the realm and nonce of the 401), refreshes the allocation before its
//! lifetime ends, installs permissions for the peers and binds a channel to each, and wraps
//! what str0m sends from the relayed candidate (ChannelData once a channel is bound, Send
//! indications before) and unwraps what the server relays back (ChannelData, Data
//! indications). The core feeds it time and the server's datagrams and sends what it queues
//! to the server from the transport's UDP socket.
//!
//! Message encoding is `stun-types` / `turn-types`; this module is the state machine.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use stun_types::attribute::{ErrorCode, Nonce, Realm, Username};
use stun_types::message::{
  IntegrityAlgorithm, IntegrityKey, LongTermKeyCredentials, Message, MessageClass, MessageIntegrityCredentials,
  MessageWrite, MessageWriteExt, MessageWriteVec, Method, TransactionId,
};
use turn_types::attribute::{ChannelNumber, Data, Lifetime, RequestedTransport, XorPeerAddress, XorRelayedAddress};
use turn_types::channel::ChannelData;
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA, REFRESH, SEND};

/// RFC 8489 §6.2.1: first retransmit after 500 ms, doubling, 7 sends in all (39.5 s).
const INITIAL_RTO: Duration = Duration::from_millis(500);
const MAX_SENDS: u32 = 7;
const RELIABLE_TIMEOUT: Duration = Duration::from_millis(39_500);
/// The lifetime the server grants when the response does not say (RFC 8656 §3.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Refresh this long before the allocation expires (libwebrtc: one minute).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Permissions last 5 minutes and channel bindings 10 (RFC 8656 §9, §12); renewed a minute early.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
const CHANNEL_REFRESH: Duration = Duration::from_secs(540);
/// Peers (and so permissions and channels) held at once: one per remote candidate address,
/// and a remote has a handful.
const MAX_PEERS: usize = 32;
/// Packets held for peers whose permission is still being installed; the oldest go first.
const MAX_WAITING: usize = 32;
/// 438 Stale Nonce retries in a row before a request counts as failed.
const MAX_NONCE_RETRIES: u32 = 3;
/// RFC 8656 §12: channel numbers 0x4000 through 0x4FFF.
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;
/// UDP (RFC 8656 §18.2: the REQUESTED-TRANSPORT protocol number).
const TRANSPORT_UDP: u8 = RequestedTransport::UDP;

/// How the client reaches its TURN server (what the relay does towards peers is always UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TurnTransport {
  /// `turn:host:port?transport=udp` (the default).
  Udp,
  /// `turn:host:port?transport=tcp`: one TCP connection carries every message.
  Tcp,
  /// `turns:host:port?transport=tcp`: the same over TLS.
  Tls,
}

impl TurnTransport {
  /// TCP and TLS deliver in order and retransmit themselves.
  pub fn reliable(self) -> bool {
    self != TurnTransport::Udp
  }
}

/// A TURN server lkrtc allocates on: one TURN URL, resolved, with its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TurnServer {
  pub addr: SocketAddr,
  pub transport: TurnTransport,
  /// The URL's host, which a TLS server's certificate must name.
  pub host: String,
  pub username: String,
  pub password: String,
}

/// The host, port and transport of a TURN URL (RFC 7065: `turn:host[:port]` or
/// `turns:host[:port]`, with an optional `?transport=udp|tcp`; `turn:` is UDP on port 3478 by
/// default, `turns:` TLS over TCP on 5349). `None` for `stun:` URLs, DTLS (`turns:` with
/// `transport=udp`) and anything malformed.
pub(crate) fn parse_turn_url(url: &str) -> Option<(String, u16, TurnTransport)> {
  let (scheme, rest) = url.trim().split_once(':')?;
  let secure = if scheme.eq_ignore_ascii_case("turn") {
    false
  } else if scheme.eq_ignore_ascii_case("turns") {
    true
  } else {
    return None;
  };
  let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
  let mut tcp = secure;
  for param in query.split('&').filter(|p| !p.is_empty()) {
    if let Some(transport) = param.strip_prefix("transport=") {
      if transport.eq_ignore_ascii_case("tcp") {
        tcp = true;
      } else if transport.eq_ignore_ascii_case("udp") {
        if secure {
          return None; // DTLS to the TURN server: not spoken
        }
      } else {
        return None;
      }
    }
  }
  let transport = match (secure, tcp) {
    (true, _) => TurnTransport::Tls,
    (false, true) => TurnTransport::Tcp,
    (false, false) => TurnTransport::Udp,
  };
  // `[v6]:port`, `[v6]`, `host:port`, `host`.
  let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
    let (host, after) = v6.split_once(']')?;
    (host, after.strip_prefix(':'))
  } else {
    match hostport.rsplit_once(':') {
      Some((host, port)) => (host, Some(port)),
      None => (hostport, None),
    }
  };
  let port = match port {
    Some(p) => p.parse().ok().filter(|p| *p != 0)?,
    None if secure => 5349,
    None => 3478,
  };
  (!host.is_empty()).then(|| (host.to_owned(), port, transport))
}

/// The length of the TURN message at the start of `header` (its first 4 bytes) as it travels on
/// a TCP stream: a STUN message is its 20-byte header and body; ChannelData is padded to 4 bytes
/// there (RFC 8656 §12.5). `None` for bytes that start neither.
pub(crate) fn stream_message_len(header: [u8; 4]) -> Option<usize> {
  let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
  match header[0] >> 6 {
    0 => Some(20 + len),
    1 => Some(4 + len.div_ceil(4) * 4),
    _ => None,
  }
}

/// What the client reports to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TurnEvent {
  /// The server allocated this relayed address: a local candidate now.
  Allocated(SocketAddr),
  /// The allocation could not be made or was lost; the client does nothing more.
  Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
  Allocate,
  Refresh { lifetime: u32 },
  Permission(IpAddr),
  ChannelBind(SocketAddr, u16),
}

struct Request {
  id: TransactionId,
  kind: Kind,
  bytes: Vec<u8>,
  sends: u32,
  rto: Duration,
  next_at: Instant,
  nonce_retries: u32,
}

struct Auth {
  username: String,
  realm: String,
  nonce: String,
  key: IntegrityKey,
  credentials: MessageIntegrityCredentials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
  Allocating,
  Allocated { relayed: SocketAddr, refresh_at: Instant },
  Failed,
  Closed,
}

struct Permission {
  installed: bool,
  /// When to renew it (or `None` while a request is in flight).
  refresh_at: Option<Instant>,
}

struct Channel {
  number: u16,
  bound: bool,
  refresh_at: Option<Instant>,
}

/// One allocation on one TURN server. See the module docs.
pub(crate) struct TurnClient {
  server: SocketAddr,
  transport: TurnTransport,
  /// The relayed address once allocated, kept after the allocation ends so that what str0m
  /// still sends from it is dropped rather than sent from the host socket.
  last_relayed: Option<SocketAddr>,
  username: String,
  password: String,
  auth: Option<Auth>,
  state: State,
  requests: Vec<Request>,
  permissions: HashMap<IpAddr, Permission>,
  channels: HashMap<SocketAddr, Channel>,
  channel_peers: HashMap<u16, SocketAddr>,
  next_channel: u16,
  waiting: VecDeque<(SocketAddr, Vec<u8>)>,
  out: VecDeque<Vec<u8>>,
  events: VecDeque<TurnEvent>,
}

impl TurnClient {
  /// Starts allocating at once: the first Allocate is queued for `poll_transmit`.
  pub fn new(server: SocketAddr, transport: TurnTransport, username: &str, password: &str, now: Instant) -> Self {
    let mut client = TurnClient {
      server,
      transport,
      last_relayed: None,
      username: username.to_owned(),
      password: password.to_owned(),
      auth: None,
      state: State::Allocating,
      requests: Vec::new(),
      permissions: HashMap::new(),
      channels: HashMap::new(),
      channel_peers: HashMap::new(),
      next_channel: FIRST_CHANNEL,
      waiting: VecDeque::new(),
      out: VecDeque::new(),
      events: VecDeque::new(),
    };
    client.request(Kind::Allocate, now, 0);
    client
  }

  /// The TURN server's address: every datagram of this client goes to it.
  pub fn server(&self) -> SocketAddr {
    self.server
  }

  pub fn transport(&self) -> TurnTransport {
    self.transport
  }

  /// The relayed address it had last, allocated or not any more.
  pub fn last_relayed(&self) -> Option<SocketAddr> {
    self.last_relayed
  }

  /// Whether `source` is (or was) this client's relayed address.
  pub fn carries(&self, source: SocketAddr) -> bool {
    self.last_relayed == Some(source)
  }

  /// The connection to the server ended (TCP, TLS), for `why`: the allocation is gone with it.
  pub fn connection_lost(&mut self, why: &str) {
    if !matches!(self.state, State::Failed | State::Closed) {
      self.fail(&format!("the connection to the TURN server ended: {why}"));
    }
  }

  /// The allocation failed or was lost.
  pub fn is_failed(&self) -> bool {
    self.state == State::Failed
  }

  /// The relayed address, once allocated.
  pub fn relayed(&self) -> Option<SocketAddr> {
    match self.state {
      State::Allocated { relayed, .. } => Some(relayed),
      _ => None,
    }
  }

  /// The next datagram to send to the server.
  pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
    self.out.pop_front()
  }

  pub fn poll_event(&mut self) -> Option<TurnEvent> {
    self.events.pop_front()
  }

  /// When `handle_timeout` must run next.
  pub fn poll_timeout(&self) -> Option<Instant> {
    let requests = self.requests.iter().map(|r| r.next_at);
    let allocation = match self.state {
      State::Allocated { refresh_at, .. } => Some(refresh_at),
      _ => None,
    };
    let permissions = self.permissions.values().filter_map(|p| p.refresh_at);
    let channels = self.channels.values().filter_map(|c| c.refresh_at);
    requests.chain(allocation).chain(permissions).chain(channels).min()
  }

  pub fn handle_timeout(&mut self, now: Instant) {
    if matches!(self.state, State::Failed | State::Closed) {
      return;
    }
    // Retransmits, and requests that got no answer at all.
    let mut gave_up = Vec::new();
    for r in &mut self.requests {
      if r.next_at > now {
        continue;
      }
      if r.sends >= MAX_SENDS || self.transport.reliable() {
        gave_up.push(r.id);
        continue;
      }
      r.sends += 1;
      r.rto *= 2;
      // After the last send the answer gets 16 initial RTOs (RFC 8489's Rm).
      r.next_at = now + if r.sends == MAX_SENDS { INITIAL_RTO * 16 } else { r.rto };
      self.out.push_back(r.bytes.clone());
    }
    for id in gave_up {
      if let Some(i) = self.requests.iter().position(|r| r.id == id) {
        let r = self.requests.remove(i);
        self.request_failed(r.kind, "no answer from the TURN server");
      }
    }
    if let State::Allocated { refresh_at, .. } = self.state {
      if refresh_at <= now && !self.in_flight(|k| matches!(k, Kind::Refresh { .. })) {
        // Pushed far out until the answer says when the next one is due.
        self.set_refresh_at(now + DEFAULT_LIFETIME);
        let lifetime = DEFAULT_LIFETIME.as_secs() as u32;
        self.request(Kind::Refresh { lifetime }, now, 0);
      }
    }
    let due: Vec<IpAddr> = self
      .permissions
      .iter()
      .filter(|(_, p)| p.refresh_at.is_some_and(|t| t <= now))
      .map(|(ip, _)| *ip)
      .collect();
    for ip in due {
      self.send_permission(ip, now);
    }
    let due: Vec<(SocketAddr, u16)> = self
      .channels
      .iter()
      .filter(|(_, c)| c.refresh_at.is_some_and(|t| t <= now))
      .map(|(peer, c)| (*peer, c.number))
      .collect();
    for (peer, number) in due {
      self.send_channel_bind(peer, number, now);
    }
  }

  /// Asks for a permission for `ip` (a remote candidate's address) ahead of the first packet.
  pub fn create_permission(&mut self, ip: IpAddr, now: Instant) {
    if self.relayed().is_none() || self.permissions.contains_key(&ip) || self.permissions.len() >= MAX_PEERS {
      return;
    }
    self.send_permission(ip, now);
  }

  /// Relays `data` to `peer`. Before the peer's permission is installed the packet waits (a
  /// bounded few); without an allocation it is dropped, as a packet on a dead socket would be.
  pub fn send_to(&mut self, peer: SocketAddr, data: &[u8], now: Instant) {
    if self.relayed().is_none() {
      return;
    }
    match self.permissions.get(&peer.ip()) {
      Some(p) if p.installed => {}
      Some(_) => return self.hold(peer, data),
      None if self.permissions.len() >= MAX_PEERS => {
        tracing::debug!(%peer, "TURN: too many peers, packet dropped");
        return;
      }
      None => {
        self.send_permission(peer.ip(), now);
        return self.hold(peer, data);
      }
    }
    self.wrap(peer, data, now);
  }

  /// A datagram from the server: a response to one of our requests (consumed), or relayed data
  /// from a peer, returned as (peer, packet).
  pub fn handle_receive(&mut self, data: &[u8], now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
    // RFC 7983: 64-79 is ChannelData (RFC 8656 reserves 0x4000-0x4FFF).
    if data.first().is_some_and(|b| (64..=79).contains(b)) {
      let cd = ChannelData::parse(data).ok()?;
      let peer = *self.channel_peers.get(&cd.id())?;
      return Some((peer, cd.data().to_vec()));
    }
    let msg = Message::from_bytes(data).ok()?;
    match msg.class() {
      MessageClass::Indication if msg.method() == DATA => {
        let peer = msg.attribute::<XorPeerAddress>().ok()?.addr(msg.transaction_id());
        let payload = msg.attribute::<Data>().ok()?;
        Some((peer, payload.data().to_vec()))
      }
      MessageClass::Success | MessageClass::Error => {
        self.on_response(&msg, now);
        None
      }
      _ => None,
    }
  }

  /// Releases the allocation (a Refresh with lifetime 0, not retransmitted: the allocation
  /// expires on its own if it is lost).
  pub fn close(&mut self) {
    if self.relayed().is_some() {
      if let Ok((_, bytes)) = self.encode(Kind::Refresh { lifetime: 0 }) {
        self.out.push_back(bytes);
      }
    }
    self.state = State::Closed;
    self.requests.clear();
    self.waiting.clear();
  }

  // ---- inside ----

  fn in_flight(&self, f: impl Fn(&Kind) -> bool) -> bool {
    self.requests.iter().any(|r| f(&r.kind))
  }

  fn set_refresh_at(&mut self, at: Instant) {
    if let State::Allocated { refresh_at, .. } = &mut self.state {
      *refresh_at = at;
    }
  }

  fn hold(&mut self, peer: SocketAddr, data: &[u8]) {
    if self.waiting.len() >= MAX_WAITING {
      self.waiting.pop_front();
    }
    self.waiting.push_back((peer, data.to_vec()));
  }

  /// Sends to a peer whose permission is installed: on its channel once bound, else in a Send
  /// indication while the channel is being bound.
  fn wrap(&mut self, peer: SocketAddr, data: &[u8], now: Instant) {
    match self.channels.get(&peer) {
      Some(c) if c.bound => {
        let cd = ChannelData::new(c.number, data);
        let mut buf = vec![0u8; 4 + data.len()];
        cd.write_into_unchecked(&mut buf);
        // RFC 8656 §12.5: the padding to 4 bytes is sent over TCP, not over UDP.
        if self.transport.reliable() {
          buf.resize(buf.len().div_ceil(4) * 4, 0);
        }
        self.out.push_back(buf);
        return;
      }
      Some(_) => {}
      None => {
        if let Some(number) = self.free_channel() {
          self.channels.insert(
            peer,
            Channel {
              number,
              bound: false,
              refresh_at: None,
            },
          );
          self.channel_peers.insert(number, peer);
          self.send_channel_bind(peer, number, now);
        }
      }
    }
    let mut msg = Message::builder_indication(SEND, MessageWriteVec::new());
    let id = msg.transaction_id();
    if msg.add_attribute(&XorPeerAddress::new(peer, id)).is_err() || msg.add_attribute(&Data::new(data)).is_err() {
      return;
    }
    self.out.push_back(msg.finish());
  }

  fn free_channel(&mut self) -> Option<u16> {
    if self.channels.len() >= MAX_PEERS {
      return None;
    }
    for _ in FIRST_CHANNEL..=LAST_CHANNEL {
      let n = self.next_channel;
      self.next_channel = if n >= LAST_CHANNEL { FIRST_CHANNEL } else { n + 1 };
      if !self.channel_peers.contains_key(&n) {
        return Some(n);
      }
    }
    None
  }

  fn send_permission(&mut self, ip: IpAddr, now: Instant) {
    let p = self.permissions.entry(ip).or_insert(Permission {
      installed: false,
      refresh_at: None,
    });
    p.refresh_at = None;
    self.request(Kind::Permission(ip), now, 0);
  }

  fn send_channel_bind(&mut self, peer: SocketAddr, number: u16, now: Instant) {
    if let Some(c) = self.channels.get_mut(&peer) {
      c.refresh_at = None;
    }
    self.request(Kind::ChannelBind(peer, number), now, 0);
  }

  /// Queues a new request (a new transaction) of `kind`.
  fn request(&mut self, kind: Kind, now: Instant, nonce_retries: u32) {
    let (id, bytes) = match self.encode(kind) {
      Ok(m) => m,
      Err(e) => {
        // Only an attribute too long for STUN (a username over 509 bytes) fails here.
        self.request_failed(kind, &format!("cannot encode the request: {e}"));
        return;
      }
    };
    self.out.push_back(bytes.clone());
    // Over TCP nothing is resent: the answer gets the whole of RFC 8489's Ti (39.5 s).
    let wait = if self.transport.reliable() {
      RELIABLE_TIMEOUT
    } else {
      INITIAL_RTO
    };
    self.requests.push(Request {
      id,
      kind,
      bytes,
      sends: 1,
      rto: INITIAL_RTO,
      next_at: now + wait,
      nonce_retries,
    });
  }

  fn encode(&self, kind: Kind) -> Result<(TransactionId, Vec<u8>), stun_types::message::StunWriteError> {
    let method: Method = match kind {
      Kind::Allocate => ALLOCATE,
      Kind::Refresh { .. } => REFRESH,
      Kind::Permission(_) => CREATE_PERMISSION,
      Kind::ChannelBind(..) => CHANNEL_BIND,
    };
    let mut msg = Message::builder_request(method, MessageWriteVec::new());
    let id = msg.transaction_id();
    match kind {
      Kind::Allocate => msg.add_attribute(&RequestedTransport::new(TRANSPORT_UDP))?,
      Kind::Refresh { lifetime } => msg.add_attribute(&Lifetime::new(lifetime))?,
      Kind::Permission(ip) => msg.add_attribute(&XorPeerAddress::new(SocketAddr::new(ip, 0), id))?,
      Kind::ChannelBind(peer, number) => {
        msg.add_attribute(&ChannelNumber::new(number))?;
        msg.add_attribute(&XorPeerAddress::new(peer, id))?;
      }
    }
    if let Some(auth) = &self.auth {
      msg.add_attribute(&Username::new(&auth.username)?)?;
      msg.add_attribute(&Realm::new(&auth.realm)?)?;
      msg.add_attribute(&Nonce::new(&auth.nonce)?)?;
      msg.add_message_integrity_with_key(&auth.key, IntegrityAlgorithm::Sha1)?;
    }
    Ok((id, msg.finish()))
  }

  fn on_response(&mut self, msg: &Message, now: Instant) {
    let Some(i) = self.requests.iter().position(|r| r.id == msg.transaction_id()) else {
      return; // a late answer to a retransmitted or abandoned request
    };
    // An answer we cannot authenticate is discarded (RFC 8489 §9.2.5); the request is
    // retransmitted as if it had not come. Before we have credentials there is nothing to check.
    if let Some(auth) = &self.auth {
      if msg.has_class(MessageClass::Success) && msg.validate_integrity(&auth.credentials).is_err() {
        tracing::debug!(server = %self.server, "TURN: response with a bad MESSAGE-INTEGRITY ignored");
        return;
      }
    }
    let r = self.requests.remove(i);
    if msg.has_class(MessageClass::Success) {
      self.on_success(r.kind, msg, now);
      return;
    }
    let code = msg.attribute::<ErrorCode>().map(|e| e.code()).unwrap_or(0);
    let had_auth = self.auth.is_some();
    match code {
      // The challenge (401 on the first request) or a new nonce (438): answer with the realm and
      // nonce the server gave. A 401 to a request that already carried credentials means they
      // are wrong; asking again would not change that.
      ErrorCode::UNAUTHORIZED | ErrorCode::STALE_NONCE
        if (code == ErrorCode::STALE_NONCE || !had_auth) && r.nonce_retries < MAX_NONCE_RETRIES =>
      {
        let realm = msg.attribute::<Realm>().ok().map(|r| r.realm().to_owned());
        let nonce = msg.attribute::<Nonce>().ok().map(|n| n.nonce().to_owned());
        let realm = realm.or_else(|| self.auth.as_ref().map(|a| a.realm.clone()));
        match (realm, nonce) {
          (Some(realm), Some(nonce)) => {
            let creds = LongTermKeyCredentials::new(self.username.clone(), self.password.clone(), realm.clone());
            let key = creds.make_key(IntegrityAlgorithm::Sha1);
            self.auth = Some(Auth {
              username: self.username.clone(),
              realm,
              nonce,
              key,
              credentials: creds.into(),
            });
            self.request(r.kind, now, r.nonce_retries + 1);
          }
          _ => self.request_failed(r.kind, &format!("error {code} without realm and nonce")),
        }
      }
      _ => {
        let reason = msg
          .attribute::<ErrorCode>()
          .map(|e| e.reason().to_owned())
          .unwrap_or_default();
        self.request_failed(r.kind, &format!("error {code} {reason}"));
      }
    }
  }

  fn on_success(&mut self, kind: Kind, msg: &Message, now: Instant) {
    match kind {
      Kind::Allocate => {
        let Ok(relayed) = msg.attribute::<XorRelayedAddress>() else {
          self.request_failed(kind, "Allocate answer without XOR-RELAYED-ADDRESS");
          return;
        };
        let relayed = relayed.addr(msg.transaction_id());
        self.last_relayed = Some(relayed);
        let lifetime = lifetime_of(msg);
        self.state = State::Allocated {
          relayed,
          refresh_at: now + refresh_after(lifetime),
        };
        tracing::debug!(server = %self.server, %relayed, ?lifetime, "TURN allocation");
        self.events.push_back(TurnEvent::Allocated(relayed));
      }
      Kind::Refresh { .. } => {
        let lifetime = lifetime_of(msg);
        self.set_refresh_at(now + refresh_after(lifetime));
      }
      Kind::Permission(ip) => {
        if let Some(p) = self.permissions.get_mut(&ip) {
          p.installed = true;
          p.refresh_at = Some(now + PERMISSION_REFRESH);
        }
        // What waited for it goes out now, in order.
        let waiting = std::mem::take(&mut self.waiting);
        for (peer, data) in waiting {
          if peer.ip() == ip {
            self.wrap(peer, &data, now);
          } else {
            self.waiting.push_back((peer, data));
          }
        }
      }
      Kind::ChannelBind(peer, number) => {
        if let Some(c) = self.channels.get_mut(&peer).filter(|c| c.number == number) {
          c.bound = true;
          c.refresh_at = Some(now + CHANNEL_REFRESH);
        }
      }
    }
  }

  fn request_failed(&mut self, kind: Kind, why: &str) {
    match kind {
      Kind::Allocate | Kind::Refresh { .. } => self.fail(why),
      Kind::Permission(ip) => {
        // Forgotten: the next packet to that address asks again.
        tracing::debug!(server = %self.server, %ip, "TURN permission refused: {why}");
        self.permissions.remove(&ip);
        self.waiting.retain(|(peer, _)| peer.ip() != ip);
      }
      Kind::ChannelBind(peer, number) => {
        // Send indications keep working without a channel.
        tracing::debug!(server = %self.server, %peer, "TURN channel bind failed: {why}");
        if self.channels.get(&peer).is_some_and(|c| c.number == number) {
          self.channels.remove(&peer);
          self.channel_peers.remove(&number);
        }
      }
    }
  }
}

impl TurnClient {
  fn fail(&mut self, why: &str) {
    tracing::warn!(server = %self.server, transport = ?self.transport, "TURN allocation failed: {why}");
    self.state = State::Failed;
    self.requests.clear();
    self.waiting.clear();
    self.events.push_back(TurnEvent::Failed(why.to_owned()));
  }
}

fn lifetime_of(msg: &Message) -> Duration {
  msg
    .attribute::<Lifetime>()
    .map(|l| Duration::from_secs(u64::from(l.seconds())))
    .unwrap_or(DEFAULT_LIFETIME)
}

/// When to refresh an allocation of `lifetime`: a minute before it ends, and never later than
/// half-way for short ones.
fn refresh_after(lifetime: Duration) -> Duration {
  lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2)
}

#[cfg(test)]
mod tests {
  use super::*;

  const SERVER: &str = "127.0.0.1:3478";
  const RELAYED: &str = "127.0.0.1:30000";
  const PEER: &str = "127.0.0.1:7882";
  const REALM: &str = "livekit";
  const NONCE: &str = "nonce-1";

  /// The server's side of the exchange, written with the same encoder a TURN server would use.
  struct Server {
    creds: MessageIntegrityCredentials,
  }

  impl Server {
    fn new() -> Self {
      Server {
        creds: LongTermKeyCredentials::new("user".into(), "pass".into(), REALM.into()).into(),
      }
    }

    fn challenge(&self, req: &[u8], code: u16, nonce: &str) -> Vec<u8> {
      let req = Message::from_bytes(req).unwrap();
      let mut msg = Message::builder_error(&req, MessageWriteVec::new());
      msg.add_attribute(&ErrorCode::new(code, "auth").unwrap()).unwrap();
      msg.add_attribute(&Realm::new(REALM).unwrap()).unwrap();
      msg.add_attribute(&Nonce::new(nonce).unwrap()).unwrap();
      msg.finish()
    }

    /// A success answer; the request must carry valid credentials.
    fn success(&self, req: &[u8], attrs: impl FnOnce(&mut MessageWriteVec, TransactionId)) -> Vec<u8> {
      let req = Message::from_bytes(req).unwrap();
      req
        .validate_integrity(&self.creds)
        .expect("request carries valid credentials");
      assert_eq!(req.attribute::<Username>().unwrap().username(), "user");
      assert_eq!(req.attribute::<Nonce>().unwrap().nonce(), NONCE);
      let mut msg = Message::builder_success(&req, MessageWriteVec::new());
      attrs(&mut msg, req.transaction_id());
      msg
        .add_message_integrity(&self.creds, IntegrityAlgorithm::Sha1)
        .unwrap();
      msg.finish()
    }

    fn allocated(&self, req: &[u8], lifetime: u32) -> Vec<u8> {
      self.success(req, |m, id| {
        m.add_attribute(&XorRelayedAddress::new(RELAYED.parse().unwrap(), id))
          .unwrap();
        m.add_attribute(&Lifetime::new(lifetime)).unwrap();
      })
    }
  }

  fn method(packet: &[u8]) -> Method {
    Message::from_bytes(packet).unwrap().method()
  }

  /// A client through the 401 challenge and the allocation.
  fn allocated_client(now: Instant) -> (TurnClient, Server) {
    allocated_client_over(TurnTransport::Udp, now)
  }

  /// A client over `transport` whose allocation was challenged once, then granted.
  fn allocated_client_over(transport: TurnTransport, now: Instant) -> (TurnClient, Server) {
    let server = Server::new();
    let mut c = TurnClient::new(SERVER.parse().unwrap(), transport, "user", "pass", now);
    let first = c.poll_transmit().unwrap();
    c.handle_receive(&server.challenge(&first, 401, NONCE), now);
    let second = c.poll_transmit().unwrap();
    c.handle_receive(&server.allocated(&second, 600), now);
    assert_eq!(c.poll_event(), Some(TurnEvent::Allocated(RELAYED.parse().unwrap())));
    (c, server)
  }

  #[test]
  fn turn_urls_are_parsed_with_their_transport() {
    use TurnTransport::*;
    let parse = parse_turn_url;
    let some = |h: &str, p: u16, t: TurnTransport| Some((h.to_owned(), p, t));
    assert_eq!(parse("turn:127.0.0.1:3478?transport=udp"), some("127.0.0.1", 3478, Udp));
    assert_eq!(parse("turn:turn.example.com"), some("turn.example.com", 3478, Udp));
    assert_eq!(parse("TURN:[::1]:5000"), some("::1", 5000, Udp));
    assert_eq!(parse("turn:[::1]"), some("::1", 3478, Udp));
    assert_eq!(parse("turn:10.0.0.1:3478?transport=tcp"), some("10.0.0.1", 3478, Tcp));
    assert_eq!(
      parse("turns:turn.example.com:443?transport=tcp"),
      some("turn.example.com", 443, Tls)
    );
    assert_eq!(parse("turns:turn.example.com"), some("turn.example.com", 5349, Tls));
    assert_eq!(parse("turns:turn.example.com?transport=udp"), None);
    assert_eq!(parse("turn:10.0.0.1?transport=sctp"), None);
    assert_eq!(parse("stun:10.0.0.1:3478"), None);
    assert_eq!(parse("turn:10.0.0.1:port"), None);
    assert_eq!(parse("turn::3478"), None);
    assert_eq!(parse("turn:10.0.0.1:0"), None);
  }

  #[test]
  fn stream_messages_are_delimited_by_their_headers() {
    // A STUN header with a 12-byte body; ChannelData of 5 bytes padded to 8 on a stream.
    assert_eq!(stream_message_len([0x01, 0x01, 0, 12]), Some(32));
    assert_eq!(stream_message_len([0x40, 0x00, 0, 5]), Some(12));
    assert_eq!(stream_message_len([0x40, 0x00, 0, 8]), Some(12));
    assert_eq!(stream_message_len([0x80, 0x60, 0, 1]), None); // RTP is never on the stream
  }

  #[test]
  fn over_tcp_channel_data_is_padded_and_requests_are_not_resent() {
    let now = Instant::now();
    let (mut c, server) = allocated_client_over(TurnTransport::Tcp, now);
    let peer: SocketAddr = PEER.parse().unwrap();
    c.create_permission(peer.ip(), now);
    let perm = c.poll_transmit().unwrap();
    // Unanswered for 30 s: not resent (TCP does that), and still waited for.
    c.handle_timeout(now + Duration::from_secs(30));
    assert!(c.poll_transmit().is_none());
    c.handle_receive(&server.success(&perm, |_, _| {}), now + Duration::from_secs(31));
    c.send_to(peer, b"x", now);
    let bind = c.poll_transmit().unwrap();
    let _send = c.poll_transmit().unwrap();
    c.handle_receive(&server.success(&bind, |_, _| {}), now);
    c.send_to(peer, b"media", now);
    let out = c.poll_transmit().unwrap();
    assert_eq!(out.len(), 12, "4-byte header, 5 bytes, 3 of padding");
    assert_eq!(&out[2..4], &5u16.to_be_bytes());
    assert_eq!(&out[4..9], b"media");
  }

  #[test]
  fn a_lost_connection_fails_the_allocation() {
    let now = Instant::now();
    let (mut c, _) = allocated_client(now);
    c.connection_lost("reset by peer");
    assert!(matches!(c.poll_event(), Some(TurnEvent::Failed(_))));
    assert!(c.relayed().is_none());
    assert!(
      c.carries(RELAYED.parse().unwrap()),
      "its old address stays known, to drop its packets"
    );
  }

  #[test]
  fn allocate_asks_for_udp_without_credentials_first() {
    let mut c = TurnClient::new(
      SERVER.parse().unwrap(),
      TurnTransport::Udp,
      "user",
      "pass",
      Instant::now(),
    );
    let req = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&req).unwrap();
    assert_eq!(msg.method(), ALLOCATE);
    assert_eq!(
      msg.attribute::<RequestedTransport>().unwrap().protocol(),
      RequestedTransport::UDP
    );
    assert!(msg.attribute::<Username>().is_err());
    assert!(c.poll_transmit().is_none());
  }

  #[test]
  fn a_401_is_answered_with_realm_nonce_and_integrity_then_allocates() {
    let now = Instant::now();
    let (c, _) = allocated_client(now);
    assert_eq!(c.relayed(), Some(RELAYED.parse().unwrap()));
  }

  #[test]
  fn wrong_credentials_fail_the_allocation_instead_of_looping() {
    let now = Instant::now();
    let server = Server::new();
    let mut c = TurnClient::new(SERVER.parse().unwrap(), TurnTransport::Udp, "user", "pass", now);
    let first = c.poll_transmit().unwrap();
    c.handle_receive(&server.challenge(&first, 401, NONCE), now);
    let second = c.poll_transmit().unwrap();
    c.handle_receive(&server.challenge(&second, 401, NONCE), now);
    assert!(matches!(c.poll_event(), Some(TurnEvent::Failed(why)) if why.contains("401")));
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.poll_timeout(), None);
  }

  #[test]
  fn an_unanswered_allocate_is_retransmitted_then_fails() {
    let now = Instant::now();
    let mut c = TurnClient::new(SERVER.parse().unwrap(), TurnTransport::Udp, "user", "pass", now);
    let first = c.poll_transmit().unwrap();
    let mut sends = 1;
    let mut t = now;
    while let Some(at) = c.poll_timeout() {
      t = at;
      c.handle_timeout(t);
      while let Some(p) = c.poll_transmit() {
        assert_eq!(p, first, "a retransmit is the same transaction");
        sends += 1;
      }
    }
    assert_eq!(sends, MAX_SENDS);
    // 0.5 + 1 + 2 + 4 + 8 + 16 s between the sends, then 8 s for the last answer: 39.5 s.
    assert_eq!(t - now, Duration::from_millis(39_500));
    assert!(matches!(c.poll_event(), Some(TurnEvent::Failed(_))));
  }

  #[test]
  fn the_allocation_is_refreshed_a_minute_before_its_lifetime_ends() {
    let now = Instant::now();
    let (mut c, server) = allocated_client(now);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(540)));
    let at = now + Duration::from_secs(540);
    c.handle_timeout(at);
    let refresh = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&refresh).unwrap();
    assert_eq!(msg.method(), REFRESH);
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 600);
    c.handle_receive(
      &server.success(&refresh, |m, _| m.add_attribute(&Lifetime::new(300)).unwrap()),
      at,
    );
    assert_eq!(c.poll_timeout(), Some(at + Duration::from_secs(240)));
    assert_eq!(c.poll_event(), None);
  }

  #[test]
  fn a_stale_nonce_on_refresh_is_retried_with_the_new_nonce() {
    let now = Instant::now();
    let (mut c, server) = allocated_client(now);
    let at = now + Duration::from_secs(540);
    c.handle_timeout(at);
    let refresh = c.poll_transmit().unwrap();
    c.handle_receive(&server.challenge(&refresh, 438, "nonce-2"), at);
    let again = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&again).unwrap();
    assert_eq!(msg.method(), REFRESH);
    assert_eq!(msg.attribute::<Nonce>().unwrap().nonce(), "nonce-2");
    assert_ne!(
      msg.transaction_id(),
      Message::from_bytes(&refresh).unwrap().transaction_id()
    );
    assert!(c.relayed().is_some());
  }

  #[test]
  fn packets_wait_for_the_permission_then_go_out_as_send_indications() {
    let now = Instant::now();
    let (mut c, server) = allocated_client(now);
    let peer: SocketAddr = PEER.parse().unwrap();
    c.send_to(peer, b"check-1", now);
    c.send_to(peer, b"check-2", now);
    let perm = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&perm).unwrap();
    assert_eq!(msg.method(), CREATE_PERMISSION);
    assert_eq!(
      msg
        .attribute::<XorPeerAddress>()
        .unwrap()
        .addr(msg.transaction_id())
        .ip(),
      peer.ip()
    );
    assert!(c.poll_transmit().is_none(), "nothing is sent before the permission");
    c.handle_receive(&server.success(&perm, |_, _| {}), now);
    // A channel is asked for, and the waiting packets go as Send indications meanwhile.
    let bind = c.poll_transmit().unwrap();
    assert_eq!(method(&bind), CHANNEL_BIND);
    for expected in [&b"check-1"[..], b"check-2"] {
      let send = c.poll_transmit().unwrap();
      let msg = Message::from_bytes(&send).unwrap();
      assert_eq!((msg.class(), msg.method()), (MessageClass::Indication, SEND));
      assert_eq!(
        msg.attribute::<XorPeerAddress>().unwrap().addr(msg.transaction_id()),
        peer
      );
      assert_eq!(msg.attribute::<Data>().unwrap().data(), expected);
    }
    assert!(c.poll_transmit().is_none());
  }

  #[test]
  fn a_bound_channel_carries_data_both_ways_as_channel_data() {
    let now = Instant::now();
    let (mut c, server) = allocated_client(now);
    let peer: SocketAddr = PEER.parse().unwrap();
    c.create_permission(peer.ip(), now);
    let perm = c.poll_transmit().unwrap();
    c.handle_receive(&server.success(&perm, |_, _| {}), now);
    c.send_to(peer, b"first", now);
    let bind = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&bind).unwrap();
    let number = msg.attribute::<ChannelNumber>().unwrap().channel();
    assert!((FIRST_CHANNEL..=LAST_CHANNEL).contains(&number));
    let _send_indication = c.poll_transmit().unwrap();
    c.handle_receive(&server.success(&bind, |_, _| {}), now);

    c.send_to(peer, b"media", now);
    let out = c.poll_transmit().unwrap();
    assert_eq!(&out[..2], &number.to_be_bytes());
    assert_eq!(&out[2..4], &5u16.to_be_bytes());
    assert_eq!(&out[4..], b"media");

    let mut inbound = number.to_be_bytes().to_vec();
    inbound.extend_from_slice(&4u16.to_be_bytes());
    inbound.extend_from_slice(b"rtp!");
    assert_eq!(c.handle_receive(&inbound, now), Some((peer, b"rtp!".to_vec())));
    // A channel nobody bound carries nothing.
    inbound[1] ^= 1;
    assert_eq!(c.handle_receive(&inbound, now), None);
  }

  #[test]
  fn data_indications_are_unwrapped_with_their_peer() {
    let now = Instant::now();
    let (mut c, _) = allocated_client(now);
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut msg = Message::builder_indication(DATA, MessageWriteVec::new());
    let id = msg.transaction_id();
    msg.add_attribute(&XorPeerAddress::new(peer, id)).unwrap();
    msg.add_attribute(&Data::new(b"stun check")).unwrap();
    assert_eq!(
      c.handle_receive(&msg.finish(), now),
      Some((peer, b"stun check".to_vec()))
    );
  }

  #[test]
  fn permissions_and_channels_are_renewed_before_they_expire() {
    let now = Instant::now();
    let (mut c, server) = allocated_client(now);
    let peer: SocketAddr = PEER.parse().unwrap();
    c.send_to(peer, b"x", now);
    let perm = c.poll_transmit().unwrap();
    c.handle_receive(&server.success(&perm, |_, _| {}), now);
    let bind = c.poll_transmit().unwrap();
    c.handle_receive(&server.success(&bind, |_, _| {}), now);
    while c.poll_transmit().is_some() {}
    let at = now + PERMISSION_REFRESH;
    assert_eq!(c.poll_timeout(), Some(at));
    c.handle_timeout(at);
    assert_eq!(method(&c.poll_transmit().unwrap()), CREATE_PERMISSION);
    let at = now + CHANNEL_REFRESH;
    c.handle_timeout(at);
    let methods: Vec<Method> = std::iter::from_fn(|| c.poll_transmit()).map(|p| method(&p)).collect();
    assert!(methods.contains(&CHANNEL_BIND), "{methods:?}");
  }

  #[test]
  fn peers_and_waiting_packets_are_bounded() {
    let now = Instant::now();
    let (mut c, _) = allocated_client(now);
    for i in 0..(MAX_PEERS as u32 + 10) {
      let peer = SocketAddr::new(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000u32 + i)), 5000);
      for _ in 0..3 {
        c.send_to(peer, &[0u8; 100], now);
      }
    }
    assert_eq!(c.permissions.len(), MAX_PEERS);
    assert_eq!(c.waiting.len(), MAX_WAITING);
  }

  #[test]
  fn nothing_is_relayed_before_the_allocation() {
    let now = Instant::now();
    let mut c = TurnClient::new(SERVER.parse().unwrap(), TurnTransport::Udp, "user", "pass", now);
    let _allocate = c.poll_transmit();
    c.send_to(PEER.parse().unwrap(), b"early", now);
    assert!(c.poll_transmit().is_none());
  }

  #[test]
  fn close_releases_the_allocation_with_lifetime_zero() {
    let now = Instant::now();
    let (mut c, _) = allocated_client(now);
    c.close();
    let msg = c.poll_transmit().unwrap();
    let msg = Message::from_bytes(&msg).unwrap();
    assert_eq!(msg.method(), REFRESH);
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 0);
    assert_eq!(c.poll_timeout(), None);
    assert!(c.relayed().is_none());
  }

  #[test]
  fn a_forged_success_without_valid_integrity_is_ignored() {
    let now = Instant::now();
    let server = Server::new();
    let mut c = TurnClient::new(SERVER.parse().unwrap(), TurnTransport::Udp, "user", "pass", now);
    let first = c.poll_transmit().unwrap();
    c.handle_receive(&server.challenge(&first, 401, NONCE), now);
    let second = c.poll_transmit().unwrap();
    let req = Message::from_bytes(&second).unwrap();
    let mut forged = Message::builder_success(&req, MessageWriteVec::new());
    forged
      .add_attribute(&XorRelayedAddress::new(
        "10.9.9.9:1".parse().unwrap(),
        req.transaction_id(),
      ))
      .unwrap();
    c.handle_receive(&forged.finish(), now);
    assert_eq!(c.relayed(), None);
    assert_eq!(c.poll_event(), None);
  }
}
