//! Remote ICE candidates can overtake the description they belong to: they are held per peer
//! connection until its remote description is set.

use crate::signal::session::Target;

/// Candidates held per target beyond this are dropped: a server sends a handful.
const MAX_HELD: usize = 64;

/// Per target (publisher, subscriber): `Some` until the first remote description is set.
#[derive(Debug)]
pub(crate) struct HeldCandidates([Option<Vec<String>>; 2]);

impl Default for HeldCandidates {
  fn default() -> Self {
    HeldCandidates([Some(Vec::new()), Some(Vec::new())])
  }
}

impl HeldCandidates {
  /// A candidate for `target`: returned to apply now, or held.
  pub fn arrived(&mut self, target: Target, candidate: String) -> Option<String> {
    match &mut self.0[target as usize] {
      Some(held) => {
        if held.len() < MAX_HELD {
          held.push(candidate);
        } else {
          tracing::debug!("too many early candidates for the {target:?}; dropping one");
        }
        None
      }
      None => Some(candidate),
    }
  }

  /// `target`'s remote description is set: its held candidates, to apply now; later ones pass.
  pub fn described(&mut self, target: Target) -> Vec<String> {
    self.0[target as usize].take().unwrap_or_default()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn candidates_before_the_description_wait_for_it() {
    let mut held = HeldCandidates::default();
    assert_eq!(held.arrived(Target::Subscriber, "a".into()), None);
    assert_eq!(held.arrived(Target::Subscriber, "b".into()), None);
    assert_eq!(held.described(Target::Subscriber), ["a", "b"]);
    assert_eq!(held.arrived(Target::Subscriber, "c".into()).as_deref(), Some("c"));
  }

  #[test]
  fn each_peer_connection_waits_for_its_own_description() {
    let mut held = HeldCandidates::default();
    held.described(Target::Publisher);
    assert_eq!(held.arrived(Target::Subscriber, "a".into()), None);
    assert_eq!(held.arrived(Target::Publisher, "b".into()).as_deref(), Some("b"));
  }

  #[test]
  fn held_candidates_are_bounded() {
    let mut held = HeldCandidates::default();
    for n in 0..MAX_HELD + 5 {
      held.arrived(Target::Publisher, n.to_string());
    }
    assert_eq!(held.described(Target::Publisher).len(), MAX_HELD);
  }
}
