//! A process-wide pool of frame buffers. A new frame's memory costs page faults on first touch
//! (several times the conversion itself at 720p); the buffer of a frame that was dropped (by
//! Rust, or by JavaScript's garbage collector) serves the next frame of the same byte size.
//!
//! Bounded, and only as big as the current demand:
//! - at most [`limit`] bytes wait (`LKRTC_FRAME_POOL_MB` sets it; 0 turns the pool off), the
//!   oldest buffers freed first;
//! - a buffer is kept only while frames of its size are being made: one given back when no
//!   frame of its size was taken within [`MAX_IDLE`] is freed at once (the picture size changed),
//!   and one that waits longer than [`MAX_IDLE`] is freed (checked on every take and give, and by
//!   a short-lived trimmer thread while the pool holds anything), so an idle pool is empty.
//!
//! Buffers lent to JavaScript come back only when its event loop turns, from the finalizers of
//! collected frames: [`take_to_lend`] stops allocating for a loop that never yields.
//!
//! The rules live in [`Pool`], which takes the time as an argument; the process-wide instance
//! behind [`take`] and [`give`] adds the clock, the lock and the trimmer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The default bound: 30 1080p I420 frames, 11 1080p RGBA ones. JavaScript's dropped frames
/// come back in batches, one per garbage collection, which V8 starts when about 64 MB more
/// external memory is held than after the last: the pool holds a batch while the next builds
/// up, instead of freeing it and faulting in as much new memory.
pub const DEFAULT_LIMIT_BYTES: usize = 96 * 1024 * 1024;
/// A size not taken for this long is no longer wanted: its buffers are freed.
pub const MAX_IDLE: Duration = Duration::from_secs(1);

/// The pool's rules, with time passed in.
#[derive(Debug)]
pub struct Pool {
  limit: usize,
  /// Waiting buffers and when each was given back, oldest first.
  free: Vec<(Vec<u8>, Instant)>,
  bytes: usize,
  /// Each size recently taken and when it last was.
  wanted: Vec<(usize, Instant)>,
  reused: u64,
  allocated: u64,
}

impl Pool {
  /// An empty pool holding at most `limit` bytes.
  pub const fn new(limit: usize) -> Self {
    Self {
      limit,
      free: Vec::new(),
      bytes: 0,
      wanted: Vec::new(),
      reused: 0,
      allocated: 0,
    }
  }

  /// A waiting buffer of exactly `len` bytes (an earlier frame's: the caller overwrites it all),
  /// the newest one, likeliest to be still in the cache; `None` when there is none: the caller
  /// allocates. Either way the size is now wanted.
  pub fn take(&mut self, len: usize, now: Instant) -> Option<Vec<u8>> {
    match self.wanted.iter_mut().find(|(l, _)| *l == len) {
      Some((_, at)) => *at = now,
      None => self.wanted.push((len, now)),
    }
    match self.free.iter().rposition(|(b, _)| b.len() == len) {
      Some(i) => {
        let (buffer, _) = self.free.remove(i);
        self.bytes -= buffer.len();
        self.reused += 1;
        Some(buffer)
      }
      None => {
        self.allocated += 1;
        None
      }
    }
  }

  /// Keeps `buffer` for a later take of its size, or hands it back to be freed (by the caller,
  /// outside any lock) when its size is not wanted, it is too big to be worth keeping, or it is
  /// oddly shaped (spare capacity: not a frame buffer). Past the bound, the oldest buffers are
  /// handed back instead.
  pub fn give(&mut self, buffer: Vec<u8>, now: Instant) -> Vec<Vec<u8>> {
    let len = buffer.len();
    let wanted = self
      .wanted
      .iter()
      .any(|&(l, at)| l == len && now.saturating_duration_since(at) < MAX_IDLE);
    if len == 0 || buffer.capacity() != len || len > self.limit / 2 || !wanted {
      return vec![buffer];
    }
    let mut out = Vec::new();
    while self.bytes + len > self.limit && !self.free.is_empty() {
      let (old, _) = self.free.remove(0);
      self.bytes -= old.len();
      out.push(old);
    }
    self.bytes += len;
    self.free.push((buffer, now));
    out
  }

  /// Hands back (to be freed) buffers that waited [`MAX_IDLE`], and forgets sizes not taken
  /// within it.
  pub fn trim(&mut self, now: Instant) -> Vec<Vec<u8>> {
    self
      .wanted
      .retain(|&(_, at)| now.saturating_duration_since(at) < MAX_IDLE);
    let mut out = Vec::new();
    let mut i = 0;
    while i < self.free.len() {
      if now.saturating_duration_since(self.free[i].1) >= MAX_IDLE {
        let (old, _) = self.free.remove(i);
        self.bytes -= old.len();
        out.push(old);
      } else {
        i += 1;
      }
    }
    out
  }

  /// What the pool holds and has done.
  pub fn stats(&self) -> PoolStats {
    PoolStats {
      buffers: self.free.len(),
      bytes: self.bytes,
      reused: self.reused,
      allocated: self.allocated,
    }
  }
}

/// What the pool holds and has served, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
  /// Buffers waiting.
  pub buffers: usize,
  /// Their bytes.
  pub bytes: usize,
  /// Takes served from the pool.
  pub reused: u64,
  /// Takes that allocated.
  pub allocated: u64,
}

/// The process-wide pool's bound in bytes: `LKRTC_FRAME_POOL_MB` (megabytes, 0 = no pool), read
/// once, else [`DEFAULT_LIMIT_BYTES`].
pub fn limit() -> usize {
  static LIMIT: OnceLock<usize> = OnceLock::new();
  *LIMIT.get_or_init(|| {
    std::env::var("LKRTC_FRAME_POOL_MB")
      .ok()
      .and_then(|v| v.trim().parse::<usize>().ok())
      .map_or(DEFAULT_LIMIT_BYTES, |mb| mb.saturating_mul(1024 * 1024))
  })
}

struct Global {
  pool: Pool,
  trimmer: bool,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
  pool: Pool::new(0),
  trimmer: false,
});

fn global() -> MutexGuard<'static, Global> {
  let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
  g.pool.limit = limit();
  g
}

/// A buffer of exactly `len` bytes: a dropped frame's (holding its bytes: the caller overwrites
/// all of them) or a new zeroed one.
pub fn take(len: usize) -> Vec<u8> {
  if len == 0 {
    return Vec::new();
  }
  let now = Instant::now();
  let (reused, stale) = {
    let mut g = global();
    let stale = g.pool.trim(now);
    (g.pool.take(len, now), stale)
  };
  drop(stale);
  // Zeroed memory is free from the allocator (fresh pages), unlike uninitialized-then-written.
  reused.unwrap_or_else(|| vec![0; len])
}

/// Gives a frame's buffer back for a later frame of its size (see [`Pool::give`]).
pub fn give(buffer: Vec<u8>) {
  let now = Instant::now();
  let freed = {
    let mut g = global();
    let mut freed = g.pool.trim(now);
    freed.extend(g.pool.give(buffer, now));
    if !g.trimmer && g.pool.bytes > 0 {
      g.trimmer = start_trimmer();
    }
    freed
  };
  drop(freed);
}

/// A thread that frees idle buffers while the pool holds any, then ends.
fn start_trimmer() -> bool {
  std::thread::Builder::new()
    .name("lkrtc-pool-trim".into())
    .spawn(|| loop {
      std::thread::sleep(MAX_IDLE / 2);
      let (stale, done) = {
        let mut g = global();
        let stale = g.pool.trim(Instant::now());
        let done = g.pool.bytes == 0;
        if done {
          g.trimmer = false;
        }
        (stale, done)
      };
      drop(stale);
      if done {
        return;
      }
    })
    .is_ok()
}

/// Bytes lent to owners that give them back later through [`give_back`] (JavaScript, whose
/// collected buffers come back only when its event loop turns).
static LENT: AtomicUsize = AtomicUsize::new(0);
/// Bytes lent since the last [`give_back`]: a JavaScript loop that makes frames without ever
/// yielding gives nothing back, however many it drops.
static LENT_SINCE_RETURN: AtomicUsize = AtomicUsize::new(0);

/// Past this many bytes lent with none given back, [`take_to_lend`] allocates no more: a loop
/// that never yields would otherwise pile up collected frames waiting for their finalizers.
/// Above what one garbage collection gives back in a loop that yields (60-120 MB).
pub const MAX_LENT_BYTES: usize = 160 * 1024 * 1024;

/// A buffer of exactly `len` bytes (as [`take`]) to be lent (see [`lent`]): a pooled one, or a
/// new one until [`MAX_LENT_BYTES`] are lent with none given back; `None` past that (the caller then uses
/// memory its owner frees by itself, outside the pool).
pub fn take_to_lend(len: usize) -> Option<Vec<u8>> {
  let now = Instant::now();
  let (reused, stale) = {
    let mut g = global();
    let stale = g.pool.trim(now);
    (g.pool.take(len, now), stale)
  };
  drop(stale);
  match reused {
    Some(b) => Some(b),
    None if LENT_SINCE_RETURN.load(Ordering::Relaxed) + len <= MAX_LENT_BYTES => Some(vec![0; len]),
    None => None,
  }
}

/// Counts `len` bytes lent: a frame buffer handed to an owner that will [`give_back`] it.
pub fn lent(len: usize) {
  LENT.fetch_add(len, Ordering::Relaxed);
  LENT_SINCE_RETURN.fetch_add(len, Ordering::Relaxed);
}

/// Gives back a lent buffer (see [`lent`]) to the pool.
pub fn give_back(buffer: Vec<u8>) {
  LENT.fetch_sub(buffer.len(), Ordering::Relaxed);
  LENT_SINCE_RETURN.store(0, Ordering::Relaxed);
  give(buffer);
}

/// Bytes lent and not given back yet.
pub fn lent_bytes() -> usize {
  LENT.load(Ordering::Relaxed)
}

/// The process-wide pool's current figures.
pub fn stats() -> PoolStats {
  global().pool.stats()
}

#[cfg(test)]
mod tests {
  use super::*;

  const MB: usize = 1024 * 1024;

  fn filled(len: usize, byte: u8) -> Vec<u8> {
    vec![byte; len]
  }

  #[test]
  fn a_given_buffer_serves_the_next_take_of_its_size() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    assert!(pool.take(MB, t).is_none());
    let b = filled(MB, 7);
    let ptr = b.as_ptr();
    assert!(pool.give(b, t).is_empty());
    let again = pool.take(MB, t).expect("the given buffer");
    assert_eq!(again.as_ptr(), ptr);
    assert_eq!(again.len(), MB);
    assert_eq!(pool.stats().reused, 1);
    assert_eq!(pool.stats().allocated, 1);
  }

  #[test]
  fn a_take_of_another_size_gets_nothing() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    pool.take(MB, t);
    pool.take(MB + 1, t);
    assert!(pool.give(filled(MB, 1), t).is_empty());
    assert!(pool.take(MB + 1, t).is_none());
    assert_eq!(pool.stats().buffers, 1);
  }

  #[test]
  fn the_pool_never_holds_more_than_its_bound_and_frees_the_oldest() {
    let mut pool = Pool::new(10 * MB);
    let t = Instant::now();
    pool.take(3 * MB, t);
    let mut freed = 0;
    for i in 0..5u8 {
      freed += pool.give(filled(3 * MB, i), t).len();
      assert!(pool.stats().bytes <= 10 * MB);
    }
    assert_eq!(pool.stats().buffers, 3);
    assert_eq!(freed, 2);
    // The first two given were freed: what remains are the later ones, newest first.
    let kept: Vec<u8> = std::iter::from_fn(|| pool.take(3 * MB, t)).map(|b| b[0]).collect();
    assert_eq!(kept, [4, 3, 2]);
  }

  #[test]
  fn a_buffer_waiting_longer_than_max_idle_is_freed() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    pool.take(MB, t);
    pool.give(filled(MB, 1), t);
    assert!(pool.trim(t + MAX_IDLE / 2).is_empty());
    let freed = pool.trim(t + MAX_IDLE);
    assert_eq!(freed.len(), 1);
    assert_eq!(pool.stats().bytes, 0);
    assert_eq!(pool.stats().buffers, 0);
  }

  #[test]
  fn a_buffer_of_a_size_no_longer_taken_is_freed_when_given_back() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    pool.take(MB, t);
    // Frames are now 2 MB; the 1 MB frames still in use come back later.
    let later = t + MAX_IDLE;
    pool.take(2 * MB, later);
    assert_eq!(pool.give(filled(MB, 1), later).len(), 1);
    assert!(pool.give(filled(2 * MB, 1), later).is_empty());
    assert_eq!(pool.stats().bytes, 2 * MB);
  }

  #[test]
  fn buffers_of_the_old_size_are_freed_within_max_idle_of_a_size_change() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    pool.take(MB, t);
    pool.give(filled(MB, 1), t);
    pool.give(filled(MB, 1), t);
    let later = t + MAX_IDLE / 2;
    pool.take(2 * MB, later);
    pool.give(filled(2 * MB, 1), later);
    let freed = pool.trim(t + MAX_IDLE);
    assert_eq!(freed.iter().map(Vec::len).collect::<Vec<_>>(), [MB, MB]);
    assert_eq!(pool.stats().bytes, 2 * MB);
  }

  #[test]
  fn a_buffer_with_spare_capacity_is_not_kept() {
    let mut pool = Pool::new(16 * MB);
    let t = Instant::now();
    pool.take(MB, t);
    let mut v = Vec::with_capacity(MB + 64);
    v.resize(MB, 0u8);
    assert_eq!(pool.give(v, t).len(), 1);
    assert_eq!(pool.stats().buffers, 0);
  }

  #[test]
  fn lending_allocates_nothing_more_once_max_lent_bytes_are_out_with_none_back() {
    // The process-wide pool; a size no other test uses. The memory is never touched.
    let len = 8 * MB + 3;
    let mut out = Vec::new();
    while let Some(b) = take_to_lend(len) {
      lent(b.len());
      out.push(b);
      assert!(out.len() <= MAX_LENT_BYTES / len);
    }
    assert_eq!(out.len(), MAX_LENT_BYTES / len);
    // One comes back (the event loop turned): lending goes on, with that very buffer first.
    let back = out.pop().unwrap();
    let ptr = back.as_ptr();
    give_back(back);
    let again = take_to_lend(len).expect("a buffer after a give-back");
    assert_eq!(again.as_ptr(), ptr);
    lent(again.len());
    out.push(again);
    for b in out {
      give_back(b);
    }
  }

  #[test]
  fn a_pool_with_a_zero_bound_keeps_nothing() {
    let mut pool = Pool::new(0);
    let t = Instant::now();
    pool.take(MB, t);
    assert_eq!(pool.give(filled(MB, 1), t).len(), 1);
    assert!(pool.take(MB, t).is_none());
  }
}
