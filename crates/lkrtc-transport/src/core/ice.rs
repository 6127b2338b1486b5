//! ICE and path liveness: remote candidates, announcing the local ones, datagrams in (which path
//! is in use, when it last carried anything) and the connected/disconnected transitions.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input};

use super::{Core, Poll};
use crate::candidate::candidate_init_json;
use crate::recv_estimate::rtp_abs_send_time;
use crate::sdp;
use crate::turn::{TurnEvent, TurnTransport};
use crate::TransportEvent;

/// Whether a packet is DTLS, RTP or RTCP, which go on the nominated pair only, rather than STUN,
/// which goes on every pair (RFC 7983: a first byte of 0-3 is STUN).
pub(super) fn is_media(packet: &[u8]) -> bool {
  packet.first().is_some_and(|b| *b > 3)
}

impl Core {
  pub fn add_remote_candidate(&mut self, c: Candidate, now: Instant) {
    if !crate::candidate::reachable(&c) {
      return;
    }
    // Nor can a v4 socket reach a v6 candidate (or the reverse).
    if c.addr().is_ipv4() != self.local_is_v4 {
      return;
    }
    // The remote's checks reach a relayed candidate only once the TURN server permits its
    // address; asked for now rather than at our first check to it.
    if c.proto() == Protocol::Udp {
      for t in &mut self.turn {
        t.create_permission(c.addr().ip(), now);
      }
    }
    self.rtc.add_remote_candidate(c);
  }

  /// The next message a TURN client has for its server.
  pub(super) fn poll_turn_transmit(&mut self) -> Option<Poll> {
    self.turn.iter_mut().find_map(|c| {
      let data = c.poll_transmit()?;
      Some(match c.transport() {
        TurnTransport::Udp => Poll::Transmit(Protocol::Udp, c.server(), data),
        TurnTransport::Tcp | TurnTransport::Tls => Poll::TurnStream(c.server(), data),
      })
    })
  }

  /// One whole TURN message from the TCP (or TLS) connection to the TURN server at `server`.
  pub fn handle_turn_stream(&mut self, now: Instant, server: SocketAddr, data: &[u8]) {
    if let Some(i) = self
      .turn
      .iter()
      .position(|t| t.server() == server && t.transport().reliable())
    {
      self.receive_from_turn(i, now, data);
    }
  }

  /// The connection to the TURN server at `server` ended.
  pub fn turn_stream_closed(&mut self, server: SocketAddr, why: &str) {
    for t in self
      .turn
      .iter_mut()
      .filter(|t| t.server() == server && t.transport().reliable())
    {
      t.connection_lost(why);
    }
  }

  /// A TURN server's message: its own answers stay in the client; what it relays is handed on
  /// as received from the peer on the relayed candidate.
  fn receive_from_turn(&mut self, i: usize, now: Instant, data: &[u8]) {
    let t = &mut self.turn[i];
    let relayed = t.relayed();
    if let (Some((peer, packet)), Some(relayed)) = (t.handle_receive(data, now), relayed) {
      self.handle_receive(now, Protocol::Udp, peer, relayed, &packet);
    }
  }

  /// Allocations that succeeded become relayed local candidates (trickled at once once the
  /// others were announced); when relaying is the only way and every allocation failed, the
  /// transport has no path and fails.
  pub(super) fn poll_turn_events(&mut self) {
    let mut allocated = Vec::new();
    let mut lost = Vec::new();
    let mut failed = None;
    for t in &mut self.turn {
      while let Some(ev) = t.poll_event() {
        match ev {
          TurnEvent::Allocated(relayed) => allocated.push(relayed),
          TurnEvent::Failed(why) => {
            failed = Some(format!("{} over {:?}: {why}", t.server(), t.transport()));
            lost.extend(t.last_relayed());
          }
        }
      }
    }
    // A relayed candidate whose allocation ended carries nothing any more: its pairs go, so
    // ICE does not keep (or pick) them.
    for relayed in lost {
      if let Some(i) = self.local_candidates.iter().position(|c| c.addr() == relayed) {
        let c = self.local_candidates.remove(i);
        self.rtc.direct_api().invalidate_candidate(&c);
      }
    }
    for relayed in allocated {
      let c = match Candidate::relayed(relayed, self.local_addr, "udp") {
        Ok(c) => c,
        Err(e) => {
          tracing::warn!(%relayed, "no relayed candidate: {e}");
          continue;
        }
      };
      let Some(c) = self.rtc.add_local_candidate(c).cloned() else {
        continue;
      };
      if self.candidates_announced {
        let json = candidate_init_json(&c, self.first_mid.as_deref());
        self.events.push_back(TransportEvent::LocalCandidate(json));
      }
      self.local_candidates.push(c);
    }
    if let Some(why) = failed {
      if self.relay_only && self.turn.iter().all(|t| t.is_failed()) && self.closing_since.is_none() {
        self.fail(&format!(
          "relay-only, and no TURN server has an allocation (last: {why})"
        ));
      }
    }
  }

  /// First local description: from now on the candidates have a mid to refer to.
  pub(super) fn announce_candidates(&mut self, local_sdp: &str) {
    if self.candidates_announced {
      return;
    }
    self.candidates_announced = true;
    let first_mid = sdp::scan(local_sdp).into_iter().find_map(|s| s.mid);
    self.first_mid = first_mid.clone();
    for c in &self.local_candidates {
      let json = candidate_init_json(c, first_mid.as_deref());
      self.events.push_back(TransportEvent::LocalCandidate(json));
    }
  }

  pub fn handle_receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, dest: SocketAddr, data: &[u8]) {
    if proto == Protocol::Udp {
      if let Some(i) = self
        .turn
        .iter()
        .position(|t| t.server() == source && !t.transport().reliable())
      {
        self.receive_from_turn(i, now, data);
        return;
      }
    }
    let Ok(contents) = data.try_into() else {
      return; // not STUN/DTLS/RTP: stray datagram
    };
    // DTLS, RTP and RTCP come only on the pair the remote uses, so they prove a path alive; STUN
    // comes on every pair, and a standby pair's checks prove nothing about the path in use.
    let media = is_media(data);
    if let Some(estimate) = &mut self.recv_estimate {
      match self.abs_send_time_id.and_then(|id| rtp_abs_send_time(data, id)) {
        Some(sent) => estimate.on_packet(now, sent, data.len()),
        None => estimate.on_bytes(now, data.len()),
      }
    }
    if media {
      self.media_path = Some((proto, source, dest));
    }
    if media || self.media_path.is_none_or(|path| path == (proto, source, dest)) {
      self.last_received = Some(now);
      if !self.connected && self.dtls_up && self.ice_up {
        // Disconnected for silence, and the path carries datagrams again.
        self.set_connected(true, now);
      }
    }
    let input = Input::Receive(
      now,
      Receive {
        proto,
        source,
        destination: dest,
        contents,
      },
    );
    if let Err(e) = self.rtc.handle_input(input) {
      tracing::debug!("handle_input: {e}");
    }
  }

  pub(super) fn set_connected(&mut self, up: bool, now: Instant) {
    if up == self.connected {
      return;
    }
    self.connected = up;
    if up {
      if self.disconnected_since.take().is_some() {
        self.restart_estimate(now);
      }
      self.events.push_back(TransportEvent::Connected);
      // Media written while not connected was dropped: start every track with a keyframe.
      for t in self.tracks.iter().filter(|t| t.negotiated) {
        self.events.push_back(TransportEvent::KeyframeRequest {
          mid: t.local,
          rid: None,
        });
      }
    } else {
      self.disconnected_since = Some(now);
      self.events.push_back(TransportEvent::Disconnected);
    }
  }
}

#[cfg(test)]
mod tests {
  use std::net::SocketAddr;
  use std::time::Instant;

  use stun_types::attribute::{ErrorCode, Nonce, Realm};
  use stun_types::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageIntegrityCredentials, MessageWrite, MessageWriteExt,
    MessageWriteVec,
  };
  use turn_types::attribute::{Lifetime, XorRelayedAddress};
  use turn_types::message::ALLOCATE;

  use super::super::{Core, Poll};
  use crate::turn::{TurnServer, TurnTransport};
  use crate::{TransportConfig, TransportEvent, TransportRole};

  const TURN: &str = "127.0.0.1:3478";
  const LOCAL: &str = "127.0.0.1:50000";
  const RELAYED: &str = "127.0.0.1:30000";

  fn relay_only_core(now: Instant) -> Core {
    let mut config = TransportConfig::new(TransportRole::Subscriber, "127.0.0.1".parse().unwrap());
    config.relay_only = true;
    let server = TurnServer {
      addr: TURN.parse().unwrap(),
      transport: TurnTransport::Udp,
      host: "127.0.0.1".into(),
      username: "user".into(),
      password: "pass".into(),
    };
    Core::new(&config, LOCAL.parse().unwrap(), &[server], now)
  }

  /// The next packet the core sends to the TURN server.
  fn to_turn(core: &mut Core, now: Instant) -> Vec<u8> {
    loop {
      match core.poll(now) {
        Poll::Transmit(_, dest, data) if dest == TURN.parse::<SocketAddr>().unwrap() => return data,
        Poll::Transmit(..) => continue,
        other => panic!("nothing for the TURN server: {other:?}"),
      }
    }
  }

  /// The TURN server's `answer` reaches the core.
  fn from_turn(core: &mut Core, now: Instant, answer: &[u8]) {
    core.handle_receive(
      now,
      str0m::net::Protocol::Udp,
      TURN.parse().unwrap(),
      LOCAL.parse().unwrap(),
      answer,
    );
  }

  /// The core's allocation is challenged once, then granted; the core takes it in.
  fn allocate(core: &mut Core, now: Instant) {
    let first = to_turn(core, now);
    from_turn(core, now, &challenge(&first));
    let second = to_turn(core, now);
    from_turn(core, now, &allocated(&second));
    let _ = core.poll(now);
  }

  fn challenge(req: &[u8]) -> Vec<u8> {
    let req = Message::from_bytes(req).unwrap();
    let mut msg = Message::builder_error(&req, MessageWriteVec::new());
    msg.add_attribute(&ErrorCode::new(401, "auth").unwrap()).unwrap();
    msg.add_attribute(&Realm::new("lk").unwrap()).unwrap();
    msg.add_attribute(&Nonce::new("n").unwrap()).unwrap();
    msg.finish()
  }

  fn allocated(req: &[u8]) -> Vec<u8> {
    let creds: MessageIntegrityCredentials =
      LongTermKeyCredentials::new("user".into(), "pass".into(), "lk".into()).into();
    let req = Message::from_bytes(req).unwrap();
    let mut msg = Message::builder_success(&req, MessageWriteVec::new());
    msg
      .add_attribute(&XorRelayedAddress::new(RELAYED.parse().unwrap(), req.transaction_id()))
      .unwrap();
    msg.add_attribute(&Lifetime::new(600)).unwrap();
    msg.add_message_integrity(&creds, IntegrityAlgorithm::Sha1).unwrap();
    msg.finish()
  }

  #[test]
  fn relay_only_gathers_no_host_candidate_and_allocates_first() {
    let now = Instant::now();
    let mut core = relay_only_core(now);
    assert!(core.local_candidates.is_empty());
    let first = to_turn(&mut core, now);
    assert_eq!(Message::from_bytes(&first).unwrap().method(), ALLOCATE);
  }

  #[test]
  fn an_allocation_becomes_a_relayed_local_candidate() {
    let now = Instant::now();
    let mut core = relay_only_core(now);
    allocate(&mut core, now);
    let lines: Vec<String> = core.local_candidates.iter().map(|c| c.to_sdp_string()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("127.0.0.1 30000 typ relay"), "{lines:?}");
  }

  #[test]
  fn relay_only_fails_when_no_allocation_can_be_made() {
    let now = Instant::now();
    let mut core = relay_only_core(now);
    let first = to_turn(&mut core, now);
    from_turn(&mut core, now, &challenge(&first));
    // The same challenge again: the credentials are wrong.
    let second = to_turn(&mut core, now);
    from_turn(&mut core, now, &challenge(&second));
    assert!(matches!(core.poll(now), Poll::Dead));
    let reason = core.take_events().find_map(|e| match e {
      TransportEvent::Failed { reason } => Some(reason),
      _ => None,
    });
    let reason = reason.expect("a Failed event");
    assert!(reason.contains("127.0.0.1:3478 over Udp: error 401"), "{reason}");
  }

  #[test]
  fn a_lost_allocation_takes_its_relayed_candidate_away() {
    let now = Instant::now();
    let mut core = relay_only_core(now);
    allocate(&mut core, now);
    assert_eq!(core.local_candidates.len(), 1);
    core.turn[0].connection_lost("reset");
    // Relay-only: nothing is left, so the transport fails, and the candidate is gone.
    assert!(matches!(core.poll(now), Poll::Dead));
    assert!(core.local_candidates.is_empty());
  }
}
