//! Conversions between the pixel formats with libyuv, BT.601 limited range like libwebrtc.
//! Each pair takes the shortest route libyuv offers: one direct call, a direct call followed by
//! an in-place byte shuffle, or a hop through a BGRA or I420 scratch frame.
//!
//! libyuv names packed formats after a little-endian 32-bit word, so its "ARGB" is B,G,R,A in
//! memory. lkrtc, like LiveKit, names them by byte order: lkrtc RGBA = libyuv ABGR, ABGR = RGBA,
//! ARGB = BGRA, BGRA = ARGB, and lkrtc RGB24 (R,G,B) = libyuv RAW.

use std::os::raw::c_int;

use yuv_sys as yuv;

use crate::{VideoBufferType as T, VideoError, VideoFrame};

/// Converts `src` to a new frame of type `dst`, flipping it upside down if `flip_y`.
pub fn convert<S: AsRef<[u8]>>(src: &VideoFrame<S>, dst: T, flip_y: bool) -> Result<VideoFrame, VideoError> {
  let mut out = VideoFrame::new_zeroed(src.width(), src.height(), dst)?;
  convert_into(src, &mut out, flip_y)?;
  Ok(out)
}

impl<D: AsRef<[u8]>> VideoFrame<D> {
  /// This frame converted to `dst`, flipped upside down if `flip_y`. See [`convert`].
  pub fn convert(&self, dst: T, flip_y: bool) -> Result<VideoFrame, VideoError> {
    convert(self, dst, flip_y)
  }
}

/// Converts `src` into `dst`, which must have the same dimensions; `dst`'s type is the target.
/// Allocates only when the route needs a scratch frame (see the module comment).
pub fn convert_into<S, D>(src: &VideoFrame<S>, dst: &mut VideoFrame<D>, flip_y: bool) -> Result<(), VideoError>
where
  S: AsRef<[u8]>,
  D: AsRef<[u8]> + AsMut<[u8]>,
{
  let (width, height) = (src.width(), src.height());
  if (dst.width(), dst.height()) != (width, height) {
    return Err(VideoError::DimensionMismatch {
      width,
      height,
      given_width: dst.width(),
      given_height: dst.height(),
    });
  }
  let (from, to) = (src.buffer_type(), dst.buffer_type());

  // libyuv reads and writes I010 as u16: a buffer at an odd address (a JS view at an odd
  // byteOffset) goes through an aligned copy.
  if from == T::I010 && !is_u16_aligned(src.data()) {
    let aligned = VideoFrame::new(width, height, from, U16Bytes::copy_of(src.data()))?;
    return convert_into(&aligned, dst, flip_y);
  }
  if to == T::I010 && !is_u16_aligned(dst.data()) {
    let mut aligned = VideoFrame::new(width, height, to, U16Bytes::zeroed(dst.data().len()))?;
    convert_into(src, &mut aligned, flip_y)?;
    dst.data_mut().copy_from_slice(aligned.data());
    return Ok(());
  }

  let plan = plan(from, to).ok_or(VideoError::UnsupportedConversion { from, to })?;
  let h = if flip_y { -(height as c_int) } else { height as c_int };
  let failed = |code| VideoError::ConversionFailed { from, to, code };
  match plan {
    Plan::One(step) => {
      let args = Args::new(from, to, width, h, src.data(), dst.data_mut())?;
      // SAFETY: `Args::new` checked both buffers against the layouts the step reads and writes.
      check(unsafe { step(&args) }).map_err(failed)
    }
    Plan::ThenShuffle(step) => {
      let args = Args::new(from, T::BGRA, width, h, src.data(), dst.data_mut())?;
      // SAFETY: as above; BGRA and `to` are both 4 bytes per pixel, so the layouts match.
      check(unsafe { step(&args) }).map_err(failed)?;
      let args = Args::new_in_place(T::BGRA, to, width, height as c_int, dst.data_mut())?;
      // SAFETY: as above; the shuffle reads each 16-byte block before writing it back.
      check(unsafe { shuffle(&args) }).map_err(failed)
    }
    Plan::Via(mid, first, second) => {
      let mut scratch = vec![0u8; mid.layout(width, height).size];
      let args = Args::new(from, mid, width, height as c_int, src.data(), &mut scratch)?;
      // SAFETY: as above.
      check(unsafe { first(&args) }).map_err(failed)?;
      let args = Args::new(mid, to, width, h, &scratch, dst.data_mut())?;
      // SAFETY: as above.
      check(unsafe { second(&args) }).map_err(failed)
    }
  }
}

fn check(code: c_int) -> Result<(), c_int> {
  if code == 0 {
    Ok(())
  } else {
    Err(code)
  }
}

/// One libyuv call (or a short fixed sequence) from `args.from` to `args.to`.
/// Safety: `args` must come from `Args::new`/`Args::new_in_place` for those same formats.
type Step = unsafe fn(&Args) -> c_int;

enum Plan {
  One(Step),
  /// The step writes BGRA straight into the destination, then an in-place shuffle reorders it.
  ThenShuffle(Step),
  /// Through a scratch frame of the given type; only the second step flips.
  Via(T, Step, Step),
}

fn plan(from: T, to: T) -> Option<Plan> {
  if let Some(step) = direct(from, to) {
    return Some(Plan::One(step));
  }
  if byte_order(to).is_some() {
    if let Some(step) = direct(from, T::BGRA) {
      return Some(Plan::ThenShuffle(step));
    }
  }
  // A packed end keeps full chroma resolution through BGRA; planar pairs meet at I420.
  if from.is_packed() || to.is_packed() {
    if let (Some(first), Some(second)) = (direct(from, T::BGRA), direct(T::BGRA, to)) {
      return Some(Plan::Via(T::BGRA, first, second));
    }
  }
  Some(Plan::Via(T::I420, direct(from, T::I420)?, direct(T::I420, to)?))
}

/// Byte order of a 4-byte packed format, as channel numbers R=0, G=1, B=2, A=3.
fn byte_order(t: T) -> Option<[u8; 4]> {
  match t {
    T::RGBA => Some([0, 1, 2, 3]),
    T::ABGR => Some([3, 2, 1, 0]),
    T::ARGB => Some([3, 0, 1, 2]),
    T::BGRA => Some([2, 1, 0, 3]),
    _ => None,
  }
}

/// The libyuv `ARGBShuffle` mask turning 4-byte format `from` into `to` (4 pixels per mask).
fn shuffle_mask(from: T, to: T) -> Option<[u8; 16]> {
  let (src, dst) = (byte_order(from)?, byte_order(to)?);
  let mut mask = [0u8; 16];
  for (i, m) in mask.iter_mut().enumerate() {
    let channel = dst[i % 4];
    let at = src.iter().position(|&c| c == channel)? as u8;
    *m = (i as u8 / 4) * 4 + at;
  }
  Some(mask)
}

/// Plane pointers and strides (in bytes) of a validated source and destination.
struct Args {
  from: T,
  to: T,
  w: c_int,
  /// Negative to flip, libyuv's convention.
  h: c_int,
  s: [*const u8; 4],
  ss: [c_int; 4],
  d: [*mut u8; 4],
  ds: [c_int; 4],
}

impl Args {
  fn new(from: T, to: T, width: u32, h: c_int, src: &[u8], dst: &mut [u8]) -> Result<Self, VideoError> {
    let (so, ss) = planes(from, width, h.unsigned_abs(), src.len())?;
    let (dof, ds) = planes(to, width, h.unsigned_abs(), dst.len())?;
    let (sb, db) = (src.as_ptr(), dst.as_mut_ptr());
    Ok(Self {
      from,
      to,
      w: width as c_int,
      h,
      s: so.map(|o| o.map_or(std::ptr::null(), |o| sb.wrapping_add(o))),
      ss,
      d: dof.map(|o| o.map_or(std::ptr::null_mut(), |o| db.wrapping_add(o))),
      ds,
    })
  }

  /// Source and destination are the same buffer (for the byte shuffle).
  fn new_in_place(from: T, to: T, width: u32, h: c_int, buf: &mut [u8]) -> Result<Self, VideoError> {
    let (so, ss) = planes(from, width, h.unsigned_abs(), buf.len())?;
    let (dof, ds) = planes(to, width, h.unsigned_abs(), buf.len())?;
    let b = buf.as_mut_ptr();
    Ok(Self {
      from,
      to,
      w: width as c_int,
      h,
      s: so.map(|o| o.map_or(std::ptr::null(), |o| b.wrapping_add(o) as *const u8)),
      ss,
      d: dof.map(|o| o.map_or(std::ptr::null_mut(), |o| b.wrapping_add(o))),
      ds,
    })
  }

  /// Unsigned height.
  fn rows(&self) -> c_int {
    self.h.abs()
  }

  /// Source plane `i` as u16 samples with its stride in samples (I010).
  fn s16(&self, i: usize) -> (*const u16, c_int) {
    (self.s[i] as *const u16, self.ss[i] / 2)
  }

  fn d16(&self, i: usize) -> (*mut u16, c_int) {
    (self.d[i] as *mut u16, self.ds[i] / 2)
  }
}

/// Plane offsets and strides in format `t`, after checking a buffer of `len` bytes holds exactly
/// that frame. Planes past the last are `None` (null pointers for libyuv).
fn planes(t: T, width: u32, height: u32, len: usize) -> Result<([Option<usize>; 4], [c_int; 4]), VideoError> {
  let layout = t.layout(width, height);
  if len != layout.size {
    return Err(VideoError::InvalidFrameSize {
      width,
      height,
      buffer_type: t,
      expected: layout.size,
      given: len,
    });
  }
  let (mut o, mut s) = ([None; 4], [0 as c_int; 4]);
  for (i, plane) in layout.planes().iter().enumerate() {
    o[i] = Some(plane.offset);
    s[i] = plane.stride as c_int;
  }
  Ok((o, s))
}

/// Copies every plane row by row (a negative height flips).
unsafe fn copy_planes(a: &Args) -> c_int {
  if a.from != a.to {
    return -1;
  }
  let h = a.h.unsigned_abs();
  let w = a.w as u32;
  for (i, p) in a.from.layout(w, h).planes().iter().enumerate() {
    let rows = if a.h < 0 { -(p.rows as c_int) } else { p.rows as c_int };
    yuv::rs_CopyPlane(a.s[i], a.ss[i], a.d[i], a.ds[i], p.stride as c_int, rows);
  }
  0
}

/// Reorders the bytes of a 4-byte packed format into another.
unsafe fn shuffle(a: &Args) -> c_int {
  match shuffle_mask(a.from, a.to) {
    Some(mask) => yuv::rs_ARGBShuffle(a.s[0], a.ss[0], a.d[0], a.ds[0], mask.as_ptr(), a.w, a.h),
    None => -1,
  }
}

/// The pairs libyuv converts in one call (or a short fixed sequence without scratch memory).
fn direct(from: T, to: T) -> Option<Step> {
  if from == to {
    return Some(copy_planes);
  }
  // I420A's first three planes are an I420 frame: targets without alpha just ignore the fourth.
  if from == T::I420A && !matches!(to, T::I420 | T::I420A) && byte_order(to).is_none() {
    return direct(T::I420, to);
  }
  if byte_order(from).is_some() && byte_order(to).is_some() {
    return Some(shuffle);
  }
  let step: Step = match (from, to) {
    // packed -> I420
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGBA, T::I420) => |a| unsafe {
      yuv::rs_ABGRToI420(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::ABGR, T::I420) => |a| unsafe {
      yuv::rs_RGBAToI420(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::ARGB, T::I420) => |a| unsafe {
      yuv::rs_BGRAToI420(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::BGRA, T::I420) => |a| unsafe {
      yuv::rs_ARGBToI420(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGB24, T::I420) => |a| unsafe {
      yuv::rs_RAWToI420(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // I420 -> packed
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::RGBA) => |a| unsafe {
      yuv::rs_I420ToABGR(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::ABGR) => |a| unsafe {
      yuv::rs_I420ToRGBA(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::ARGB) => |a| unsafe {
      yuv::rs_I420ToBGRA(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::BGRA) => |a| unsafe {
      yuv::rs_I420ToARGB(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::RGB24) => |a| unsafe {
      yuv::rs_I420ToRAW(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // I420 <-> planar
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::I420A) => |a| unsafe {
      let r = yuv::rs_I420Copy(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      );
      yuv::rs_SetPlane(a.d[3], a.ds[3], a.w, a.rows(), 255);
      r
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::I422) => |a| unsafe {
      yuv::rs_I420ToI422(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::I444) => |a| unsafe {
      yuv::rs_I420ToI444(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::I010) => |a| unsafe {
      let ((y, sy), (u, su), (v, sv)) = (a.d16(0), a.d16(1), a.d16(2));
      yuv::rs_I420ToI010(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], y, sy, u, su, v, sv, a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420, T::NV12) => |a| unsafe {
      yuv::rs_I420ToNV12(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420A, T::I420) => |a| unsafe {
      yuv::rs_I420Copy(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::I420) => |a| unsafe {
      yuv::rs_I422ToI420(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::I420) => |a| unsafe {
      yuv::rs_I444ToI420(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I010, T::I420) => |a| unsafe {
      let ((y, sy), (u, su), (v, sv)) = (a.s16(0), a.s16(1), a.s16(2));
      yuv::rs_I010ToI420(
        y, sy, u, su, v, sv, a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::NV12, T::I420) => |a| unsafe {
      yuv::rs_NV12ToI420(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // packed <-> packed with RGB24
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGBA, T::RGB24) => |a| unsafe { yuv::rs_ARGBToRGB24(a.s[0], a.ss[0], a.d[0], a.ds[0], a.w, a.h) },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::BGRA, T::RGB24) => |a| unsafe { yuv::rs_ARGBToRAW(a.s[0], a.ss[0], a.d[0], a.ds[0], a.w, a.h) },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGB24, T::RGBA) => |a| unsafe { yuv::rs_RGB24ToARGB(a.s[0], a.ss[0], a.d[0], a.ds[0], a.w, a.h) },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGB24, T::BGRA) => |a| unsafe { yuv::rs_RAWToARGB(a.s[0], a.ss[0], a.d[0], a.ds[0], a.w, a.h) },
    // packed -> other planar
    (T::RGBA, T::NV12) => {
      // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
      |a| unsafe { yuv::rs_ABGRToNV12(a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.w, a.h) }
    }
    (T::BGRA, T::NV12) => {
      // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
      |a| unsafe { yuv::rs_ARGBToNV12(a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.w, a.h) }
    }
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::BGRA, T::I422) => |a| unsafe {
      yuv::rs_ARGBToI422(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::BGRA, T::I444) => |a| unsafe {
      yuv::rs_ARGBToI444(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::RGB24, T::I444) => |a| unsafe {
      yuv::rs_RAWToI444(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::BGRA, T::I420A) => |a| unsafe {
      yuv::rs_ARGBToI420Alpha(
        a.s[0], a.ss[0], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.d[3], a.ds[3], a.w, a.h,
      )
    },
    // other planar -> packed
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420A, T::RGBA) => |a| unsafe {
      yuv::rs_I420AlphaToABGR(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.s[3], a.ss[3], a.d[0], a.ds[0], a.w, a.h, 0,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I420A, T::BGRA) => |a| unsafe {
      yuv::rs_I420AlphaToARGB(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.s[3], a.ss[3], a.d[0], a.ds[0], a.w, a.h, 0,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::RGBA) => |a| unsafe {
      yuv::rs_I422ToABGR(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::ABGR) => |a| unsafe {
      yuv::rs_I422ToRGBA(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::ARGB) => |a| unsafe {
      yuv::rs_I422ToBGRA(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::BGRA) => |a| unsafe {
      yuv::rs_I422ToARGB(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::RGB24) => |a| unsafe {
      yuv::rs_I422ToRAW(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::RGBA) => |a| unsafe {
      yuv::rs_I444ToABGR(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::BGRA) => |a| unsafe {
      yuv::rs_I444ToARGB(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::RGB24) => |a| unsafe {
      yuv::rs_I444ToRAW(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I010, T::RGBA) => |a| unsafe {
      let ((y, sy), (u, su), (v, sv)) = (a.s16(0), a.s16(1), a.s16(2));
      yuv::rs_I010ToABGR(y, sy, u, su, v, sv, a.d[0], a.ds[0], a.w, a.h)
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I010, T::BGRA) => |a| unsafe {
      let ((y, sy), (u, su), (v, sv)) = (a.s16(0), a.s16(1), a.s16(2));
      yuv::rs_I010ToARGB(y, sy, u, su, v, sv, a.d[0], a.ds[0], a.w, a.h)
    },
    (T::NV12, T::RGBA) => {
      // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
      |a| unsafe { yuv::rs_NV12ToABGR(a.s[0], a.ss[0], a.s[1], a.ss[1], a.d[0], a.ds[0], a.w, a.h) }
    }
    (T::NV12, T::BGRA) => {
      // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
      |a| unsafe { yuv::rs_NV12ToARGB(a.s[0], a.ss[0], a.s[1], a.ss[1], a.d[0], a.ds[0], a.w, a.h) }
    }
    (T::NV12, T::RGB24) => {
      // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
      |a| unsafe { yuv::rs_NV12ToRAW(a.s[0], a.ss[0], a.s[1], a.ss[1], a.d[0], a.ds[0], a.w, a.h) }
    }
    // other planar <-> planar
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I422, T::I444) => |a| unsafe {
      yuv::rs_I422ToI444(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.d[2], a.ds[2], a.w, a.h,
      )
    },
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::NV12) => |a| unsafe {
      yuv::rs_I444ToNV12(
        a.s[0], a.ss[0], a.s[1], a.ss[1], a.s[2], a.ss[2], a.d[0], a.ds[0], a.d[1], a.ds[1], a.w, a.h,
      )
    },
    // libyuv has no I444ToI422: halve the chroma planes horizontally, as ARGBToI422 averages pairs.
    // SAFETY: by the `Step` contract `a` comes from `Args::new` for this arm's pair of formats.
    (T::I444, T::I422) => |a| unsafe {
      let cw = (a.w + 1) / 2;
      yuv::rs_CopyPlane(a.s[0], a.ss[0], a.d[0], a.ds[0], a.w, a.h);
      let box_ = yuv::FilterMode_kFilterBox;
      let u = yuv::rs_ScalePlane(a.s[1], a.ss[1], a.w, a.h, a.d[1], a.ds[1], cw, a.rows(), box_);
      let v = yuv::rs_ScalePlane(a.s[2], a.ss[2], a.w, a.h, a.d[2], a.ds[2], cw, a.rows(), box_);
      if u != 0 {
        u
      } else {
        v
      }
    },
    _ => return None,
  };
  Some(step)
}

fn is_u16_aligned(bytes: &[u8]) -> bool {
  (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<u16>())
}

/// u16 storage seen as bytes, so I010 samples can be handed to libyuv aligned.
struct U16Bytes {
  words: Vec<u16>,
  len: usize,
}

impl U16Bytes {
  fn zeroed(len: usize) -> Self {
    Self {
      words: vec![0; len.div_ceil(2)],
      len,
    }
  }

  fn copy_of(bytes: &[u8]) -> Self {
    let mut out = Self::zeroed(bytes.len());
    out.as_mut().copy_from_slice(bytes);
    out
  }
}

impl AsRef<[u8]> for U16Bytes {
  fn as_ref(&self) -> &[u8] {
    // SAFETY: any u16 is two valid bytes, and `len` <= 2 * words.len().
    unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
  }
}

impl AsMut<[u8]> for U16Bytes {
  fn as_mut(&mut self) -> &mut [u8] {
    // SAFETY: as above; any byte pattern is a valid u16.
    unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
  }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
