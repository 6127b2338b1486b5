//! An allocator for a process that moves frames between threads: blocks of
//! [`MAP_THRESHOLD`] bytes or more (frame buffers) are mapped from the OS and unmapped when
//! freed; smaller ones go to the system allocator. The Node addon installs it as its Rust
//! global allocator (C libraries keep the system's).
//!
//! Why: glibc serves large blocks from its heaps once one has been freed (its mmap threshold
//! rises to the freed size), one heap per thread that allocates, and a heap returns memory to
//! the OS only from its top. Frames made on decoder threads and freed on the JavaScript thread
//! (or waiting in the frame pool meanwhile) left 70-130 MB resident that no frame used. Reusing
//! frame memory without page faults is the [`crate::pool`]'s job, not the allocator's.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this many bytes or more are mapped: a 640x360 I420 frame is 345 600 bytes, 720p
/// 1.4 MB.
pub const MAP_THRESHOLD: usize = 256 * 1024;

/// The system allocator, with blocks of [`MAP_THRESHOLD`] bytes or more mapped from the OS (on
/// Unix; elsewhere everything goes to the system allocator).
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameAllocator;

/// Whether `layout` is one of ours: big, and aligned no more than a page.
fn mapped(layout: Layout) -> bool {
  cfg!(unix) && layout.size() >= MAP_THRESHOLD && layout.align() <= 4096
}

#[cfg(unix)]
unsafe fn map(size: usize) -> *mut u8 {
  // SAFETY: an anonymous private mapping touches no existing memory.
  let p = unsafe {
    libc::mmap(
      std::ptr::null_mut(),
      size,
      libc::PROT_READ | libc::PROT_WRITE,
      libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
      -1,
      0,
    )
  };
  if p == libc::MAP_FAILED {
    std::ptr::null_mut()
  } else {
    p.cast()
  }
}

#[cfg(unix)]
unsafe fn unmap(ptr: *mut u8, size: usize) {
  // SAFETY: the caller passes a block `map` returned, with its size.
  unsafe { libc::munmap(ptr.cast(), size) };
}

#[cfg(not(unix))]
unsafe fn map(_size: usize) -> *mut u8 {
  unreachable!("no mapped blocks off Unix")
}

#[cfg(not(unix))]
unsafe fn unmap(_ptr: *mut u8, _size: usize) {
  unreachable!("no mapped blocks off Unix")
}

// SAFETY: every block is released by the method matching the one that made it: `mapped(layout)`
// decides both, and callers pass the same layout (or `realloc`'s new size) back.
unsafe impl GlobalAlloc for FrameAllocator {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    if mapped(layout) {
      // SAFETY: a fresh mapping of a nonzero size.
      unsafe { map(layout.size()) }
    } else {
      // SAFETY: the caller's contract is System's.
      unsafe { System.alloc(layout) }
    }
  }

  unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
    if mapped(layout) {
      // SAFETY: as `alloc`; new anonymous pages are zero.
      unsafe { map(layout.size()) }
    } else {
      // SAFETY: the caller's contract is System's.
      unsafe { System.alloc_zeroed(layout) }
    }
  }

  unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    if mapped(layout) {
      // SAFETY: `ptr` came from `map` with this size.
      unsafe { unmap(ptr, layout.size()) }
    } else {
      // SAFETY: `ptr` came from System with this layout.
      unsafe { System.dealloc(ptr, layout) }
    }
  }

  unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `new_size`, rounded to the alignment, does not overflow.
    let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
    match (mapped(layout), mapped(new_layout)) {
      // SAFETY: a System block stays one.
      (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
      #[cfg(target_os = "linux")]
      (true, true) => {
        // SAFETY: `ptr` is a mapping of `layout.size()` bytes; the kernel moves it if needed.
        let p = unsafe { libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
          std::ptr::null_mut()
        } else {
          p.cast()
        }
      }
      _ => {
        // SAFETY: `new_layout` has a nonzero size (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
          // SAFETY: both blocks hold at least the smaller size and do not overlap; the old one
          // is released by the method that made it.
          unsafe {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
          }
        }
        new
      }
    }
  }
}

/// Gives freed memory of the C libraries (libvpx, openh264) back to the OS. glibc keeps what is
/// freed inside its heaps, one per allocating thread, returning only a heap's top by itself, so a
/// process that starts and ends many decoders and encoders (rooms joined and left) otherwise
/// keeps the high-water mark of each heap. Called when a decoder or encoder thread ends: rare
/// enough for the cost (a walk of glibc's heaps). Elsewhere (musl, macOS, Windows) a no-op.
pub fn release_free_memory() {
  #[cfg(all(target_os = "linux", target_env = "gnu"))]
  // SAFETY: malloc_trim only returns free pages to the OS; it is thread-safe.
  unsafe {
    libc::malloc_trim(0);
  }
}

#[cfg(all(test, unix))]
mod tests {
  use super::*;

  const A: FrameAllocator = FrameAllocator;

  fn fill(p: *mut u8, len: usize) {
    for i in 0..len {
      // SAFETY: `p` holds `len` bytes.
      unsafe { *p.add(i) = (i % 251) as u8 };
    }
  }

  fn check(p: *const u8, len: usize) {
    for i in 0..len {
      // SAFETY: `p` holds `len` bytes.
      assert_eq!(unsafe { *p.add(i) }, (i % 251) as u8, "byte {i}");
    }
  }

  #[test]
  fn a_large_block_is_page_aligned_zeroed_and_writable() {
    let layout = Layout::from_size_align(3_110_400, 1).unwrap();
    // SAFETY: nonzero layout; the block is freed with it.
    unsafe {
      let p = A.alloc_zeroed(layout);
      assert!(!p.is_null());
      assert_eq!(p as usize % 4096, 0);
      assert!(std::slice::from_raw_parts(p, layout.size()).iter().all(|&b| b == 0));
      fill(p, layout.size());
      check(p, layout.size());
      A.dealloc(p, layout);
    }
  }

  #[test]
  fn realloc_keeps_the_bytes_across_the_threshold_both_ways() {
    let small = Layout::from_size_align(1000, 8).unwrap();
    // SAFETY: each block is resized or freed with the layout it has.
    unsafe {
      let p = A.alloc(small);
      fill(p, 1000);
      let big = A.realloc(p, small, MAP_THRESHOLD * 3);
      check(big, 1000);
      fill(big, MAP_THRESHOLD * 3);
      let bigger = A.realloc(
        big,
        Layout::from_size_align(MAP_THRESHOLD * 3, 8).unwrap(),
        MAP_THRESHOLD * 5,
      );
      check(bigger, MAP_THRESHOLD * 3);
      let back = A.realloc(bigger, Layout::from_size_align(MAP_THRESHOLD * 5, 8).unwrap(), 500);
      check(back, 500);
      A.dealloc(back, Layout::from_size_align(500, 8).unwrap());
    }
  }

  #[cfg(target_os = "linux")]
  fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn a_freed_large_block_leaves_the_process_at_once() {
    const LEN: usize = 64 * 1024 * 1024;
    let layout = Layout::from_size_align(LEN, 1).unwrap();
    // SAFETY: the block is written within its size and freed with its layout.
    unsafe {
      let p = A.alloc(layout);
      std::ptr::write_bytes(p, 1, LEN);
      let touched = rss_bytes();
      A.dealloc(p, layout);
      let after = rss_bytes();
      assert!(touched - after >= LEN / 2, "RSS {touched} -> {after}");
    }
  }
}
