//! When a room reconnects and how, as plain state machines (no I/O, no clock of their own):
//! the media watchdog that notices a dead path, the backoff and the resume-vs-rejoin choice
//! between attempts, and what ends the room with which reason. The engine feeds them events
//! and times and does what they answer.

use std::time::Duration;

use livekit_protocol as proto;
use tokio::time::Instant;

use crate::pc::PcEvent;
use crate::signal::session::Target;
use crate::RtcError;

/// Backoff between attempts: 300 ms doubling, capped at 7 s, 10 tries (LiveKit's).
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(300);
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(7);
pub(crate) const ATTEMPTS: u32 = 10;

/// A peer connection whose path is down (nothing received for 5 s, e.g. UDP blocked) for this
/// long more is restarted: the session resumes on a new WebSocket, the publisher offers with new
/// ICE credentials and the server restarts the subscriber's ICE.
pub(crate) const ICE_RESTART_AFTER: Duration = Duration::from_secs(2);

/// How long an ICE restart has before the path counts as still down.
pub(crate) const ICE_RESTART_GRACE: Duration = Duration::from_secs(3);

/// How long a failed peer connection waits for the server to say why (a `LeaveRequest`, e.g.
/// `DUPLICATE_IDENTITY`, usually races the transport's close) before the room rejoins with
/// `MEDIA_FAILURE`.
pub(crate) const MEDIA_FAILURE_GRACE: Duration = Duration::from_secs(1);

/// What one reconnect attempt's result leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
  /// The room is back; `full` when it was a rejoin (new session, new transports).
  Reconnected { full: bool },
  /// Try again after this long.
  Retry { after: Duration },
  /// The room ends with this reason.
  GiveUp { reason: String },
}

/// One reconnection, from the loss to its outcome.
#[derive(Debug)]
pub(crate) struct ReconnectPolicy {
  reason: String,
  full: bool,
  attempts: u32,
  delay: Duration,
}

impl ReconnectPolicy {
  /// The connection was lost for `reason`; `full` when the session cannot be resumed.
  pub fn new(reason: &str, full: bool) -> Self {
    ReconnectPolicy {
      reason: reason.to_string(),
      full,
      attempts: 0,
      delay: FIRST_DELAY,
    }
  }

  /// Whether the next attempt rejoins (true) or resumes.
  pub fn full(&self) -> bool {
    self.full
  }

  /// The result of the attempt `full()` asked for.
  pub fn attempted(&mut self, result: &Result<(), RtcError>) -> Next {
    self.attempts += 1;
    match result {
      Ok(()) => Next::Reconnected { full: self.full },
      // The server refused us: trying again cannot help.
      Err(RtcError::Disconnected { reason }) => Next::GiveUp { reason: reason.clone() },
      Err(RtcError::Unauthorized { .. }) => Next::GiveUp {
        reason: self.reason.clone(),
      },
      Err(_) => {
        // As LiveKit's SDKs do: once a resume fails, the next attempts join afresh.
        self.full = true;
        if self.attempts >= ATTEMPTS {
          return Next::GiveUp {
            reason: self.reason.clone(),
          };
        }
        let after = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Next::Retry { after }
      }
    }
  }
}

/// What the loop noticed going wrong with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
  /// The signal WebSocket closed or failed.
  SignalClosed,
  /// Nothing from the server for the ping timeout.
  ServerSilent,
  /// A peer connection's path has been down for [`ICE_RESTART_AFTER`].
  MediaDown,
  /// A peer connection failed and the server gave no reason within [`MEDIA_FAILURE_GRACE`].
  MediaFailed,
  /// `Room::simulate_signal_loss`.
  Simulated,
}

impl Loss {
  /// The reason the room's events carry for it.
  pub fn reason(self) -> String {
    match self {
      Loss::SignalClosed => "SIGNAL_CLOSE".into(),
      Loss::ServerSilent => "CONNECTION_TIMEOUT".into(),
      Loss::MediaDown => "MEDIA_DISCONNECTED".into(),
      Loss::MediaFailed => proto::DisconnectReason::MediaFailure.as_str_name().into(),
      Loss::Simulated => "SIMULATED".into(),
    }
  }

  /// Whether it calls for a full rejoin rather than a resume: a failed transport cannot be
  /// resumed.
  pub fn full(self) -> bool {
    self == Loss::MediaFailed
  }
}

/// What a failed peer connection does to the room.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OnFailure {
  /// While connecting: the connect fails and the room ends with this reason.
  End { reason: String },
  /// Once up: rejoin after [`MEDIA_FAILURE_GRACE`] unless the server says why first.
  RejoinUnlessExplained,
}

pub(crate) fn on_failure(connecting: bool) -> OnFailure {
  if connecting {
    OnFailure::End {
      reason: Loss::MediaFailed.reason(),
    }
  } else {
    OnFailure::RejoinUnlessExplained
  }
}

/// What the room does when the server sends a `LeaveRequest`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OnLeave {
  Resume,
  Rejoin,
  End,
}

pub(crate) fn on_leave(action: proto::leave_request::Action) -> OnLeave {
  match action {
    proto::leave_request::Action::Resume => OnLeave::Resume,
    proto::leave_request::Action::Reconnect => OnLeave::Rejoin,
    _ => OnLeave::End,
  }
}

/// Watches the peer connections once the room is up: a path down too long asks for a resume
/// (with an ICE restart), a failed connection for a rejoin unless the server explains first.
#[derive(Debug, Default)]
pub(crate) struct MediaWatch {
  /// Per target (publisher, subscriber): since when its ICE path has been down.
  down_since: [Option<Instant>; 2],
  /// When a failed connection rejoins the room.
  failed_at: Option<Instant>,
}

impl MediaWatch {
  /// Notes when a target's path goes down after the room is up, and when it comes back.
  pub fn on_event(&mut self, target: Target, event: &PcEvent, room_up: bool, now: Instant) {
    let slot = &mut self.down_since[target as usize];
    match event {
      PcEvent::Disconnected if room_up => {
        slot.get_or_insert(now);
      }
      PcEvent::Connected | PcEvent::Failed(_) => *slot = None,
      _ => {}
    }
  }

  /// A peer connection failed after the room was up.
  pub fn failed(&mut self, now: Instant) {
    self.failed_at.get_or_insert(now + MEDIA_FAILURE_GRACE);
  }

  /// When a path down calls for a resume with an ICE restart.
  pub fn ice_restart_due(&self) -> Option<Instant> {
    self
      .down_since
      .iter()
      .flatten()
      .min()
      .map(|down| *down + ICE_RESTART_AFTER)
  }

  /// When a failed connection calls for a rejoin.
  pub fn rejoin_due(&self) -> Option<Instant> {
    self.failed_at
  }

  /// The room is back. A path that was down gets time for its ICE restart; if it is still down
  /// after that, the next resume restarts it again (a full rejoin follows once the transport
  /// fails). A rejoin starts over with new transports.
  pub fn reconnected(&mut self, full: bool, now: Instant) {
    self.failed_at = None;
    let retry = now + ICE_RESTART_GRACE;
    self.down_since = self.down_since.map(|down| down.filter(|_| !full).map(|_| retry));
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn lost() -> Result<(), RtcError> {
    Err(RtcError::Signal("connection refused".into()))
  }

  #[test]
  fn a_resume_that_works_reconnects_without_a_rejoin() {
    let mut policy = ReconnectPolicy::new("SIGNAL_CLOSE", false);
    assert!(!policy.full());
    assert_eq!(policy.attempted(&Ok(())), Next::Reconnected { full: false });
  }

  #[test]
  fn a_failed_resume_is_followed_by_rejoins() {
    let mut policy = ReconnectPolicy::new("SIGNAL_CLOSE", false);
    policy.attempted(&lost());
    assert!(policy.full());
    assert_eq!(policy.attempted(&Ok(())), Next::Reconnected { full: true });
  }

  #[test]
  fn attempts_back_off_from_300_ms_doubling_to_7_s() {
    let mut policy = ReconnectPolicy::new("SIGNAL_CLOSE", false);
    let waits: Vec<u64> = (0..ATTEMPTS - 1)
      .map(|_| match policy.attempted(&lost()) {
        Next::Retry { after } => after.as_millis() as u64,
        other => panic!("expected a retry, got {other:?}"),
      })
      .collect();
    assert_eq!(waits, [300, 600, 1200, 2400, 4800, 7000, 7000, 7000, 7000]);
  }

  #[test]
  fn the_tenth_failure_ends_the_room_with_the_reason_of_the_loss() {
    let mut policy = ReconnectPolicy::new("CONNECTION_TIMEOUT", false);
    for _ in 0..ATTEMPTS - 1 {
      policy.attempted(&lost());
    }
    assert_eq!(
      policy.attempted(&lost()),
      Next::GiveUp {
        reason: "CONNECTION_TIMEOUT".into()
      }
    );
  }

  #[test]
  fn a_server_refusal_ends_the_room_with_the_servers_reason() {
    let mut policy = ReconnectPolicy::new("SIGNAL_CLOSE", true);
    let refused = Err(RtcError::Disconnected {
      reason: "PARTICIPANT_REMOVED".into(),
    });
    assert_eq!(
      policy.attempted(&refused),
      Next::GiveUp {
        reason: "PARTICIPANT_REMOVED".into()
      }
    );
  }

  #[test]
  fn an_expired_token_ends_the_room_at_once_with_the_reason_of_the_loss() {
    let mut policy = ReconnectPolicy::new("SIGNAL_CLOSE", false);
    let unauthorized = Err(RtcError::Unauthorized {
      reason: "token expired".into(),
    });
    assert_eq!(
      policy.attempted(&unauthorized),
      Next::GiveUp {
        reason: "SIGNAL_CLOSE".into()
      }
    );
  }

  #[test]
  fn each_loss_resumes_with_its_reason_and_a_failed_transport_rejoins() {
    let losses = [
      (Loss::SignalClosed, "SIGNAL_CLOSE", false),
      (Loss::ServerSilent, "CONNECTION_TIMEOUT", false),
      (Loss::MediaDown, "MEDIA_DISCONNECTED", false),
      (Loss::MediaFailed, "MEDIA_FAILURE", true),
      (Loss::Simulated, "SIMULATED", false),
    ];
    for (loss, reason, full) in losses {
      assert_eq!((loss.reason().as_str(), loss.full()), (reason, full), "{loss:?}");
    }
  }

  #[test]
  fn a_failure_while_connecting_ends_the_room_and_later_one_rejoins() {
    assert_eq!(
      on_failure(true),
      OnFailure::End {
        reason: "MEDIA_FAILURE".into()
      }
    );
    assert_eq!(on_failure(false), OnFailure::RejoinUnlessExplained);
  }

  #[test]
  fn a_leave_asks_to_resume_rejoin_or_end() {
    use proto::leave_request::Action;
    assert_eq!(on_leave(Action::Resume), OnLeave::Resume);
    assert_eq!(on_leave(Action::Reconnect), OnLeave::Rejoin);
    assert_eq!(on_leave(Action::Disconnect), OnLeave::End);
  }

  #[test]
  fn a_path_down_after_the_room_is_up_asks_for_an_ice_restart() {
    let mut watch = MediaWatch::default();
    let t0 = Instant::now();
    watch.on_event(Target::Subscriber, &PcEvent::Disconnected, true, t0);
    // A later drop of the other path does not postpone the first.
    watch.on_event(
      Target::Publisher,
      &PcEvent::Disconnected,
      true,
      t0 + Duration::from_secs(1),
    );
    assert_eq!(watch.ice_restart_due(), Some(t0 + ICE_RESTART_AFTER));
  }

  #[test]
  fn a_path_down_while_connecting_is_not_watched() {
    let mut watch = MediaWatch::default();
    watch.on_event(Target::Publisher, &PcEvent::Disconnected, false, Instant::now());
    assert_eq!(watch.ice_restart_due(), None);
  }

  #[test]
  fn a_path_that_comes_back_is_not_restarted() {
    let mut watch = MediaWatch::default();
    let t0 = Instant::now();
    watch.on_event(Target::Publisher, &PcEvent::Disconnected, true, t0);
    watch.on_event(Target::Publisher, &PcEvent::Connected, true, t0);
    assert_eq!(watch.ice_restart_due(), None);
  }

  #[test]
  fn after_a_resume_a_path_still_down_gets_the_grace_of_its_ice_restart() {
    let mut watch = MediaWatch::default();
    let t0 = Instant::now();
    watch.on_event(Target::Publisher, &PcEvent::Disconnected, true, t0);
    watch.reconnected(false, t0 + Duration::from_secs(2));
    assert_eq!(
      watch.ice_restart_due(),
      Some(t0 + Duration::from_secs(2) + ICE_RESTART_GRACE + ICE_RESTART_AFTER)
    );
  }

  #[test]
  fn a_rejoin_forgets_the_old_transports_paths_and_failures() {
    let mut watch = MediaWatch::default();
    let t0 = Instant::now();
    watch.on_event(Target::Publisher, &PcEvent::Disconnected, true, t0);
    watch.failed(t0);
    watch.reconnected(true, t0);
    assert_eq!((watch.ice_restart_due(), watch.rejoin_due()), (None, None));
  }

  #[test]
  fn a_failure_waits_for_the_servers_reason_once() {
    let mut watch = MediaWatch::default();
    let t0 = Instant::now();
    watch.failed(t0);
    watch.failed(t0 + Duration::from_millis(500));
    assert_eq!(watch.rejoin_due(), Some(t0 + MEDIA_FAILURE_GRACE));
  }
}
