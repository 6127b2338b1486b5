//! Links the system libvpx and libaom statically and generates their bindings for the installed
//! versions. Needs libvpx-dev and libaom-dev (headers, .a, .pc) and libclang (bindgen) at build
//! time only.

use std::env;
use std::path::PathBuf;

fn main() {
  println!("cargo:rerun-if-changed=build.rs");
  println!("cargo:rerun-if-changed=src/vpx_sys.h");
  println!("cargo:rerun-if-env-changed=LKRTC_VPX_LIB_DIR");

  let lib = match pkg_config::Config::new()
    .cargo_metadata(false)
    .env_metadata(true)
    .probe("vpx")
  {
    Ok(lib) => lib,
    Err(e) => fail(&format!("libvpx not found by pkg-config (install libvpx-dev): {e}")),
  };

  // Where libvpx.a lives: an explicit override, pkg-config's -L paths and libdir, then the C
  // compiler's own search path (Debian's vpx.pc says /usr/lib, the file is in the multiarch dir).
  let mut dirs: Vec<PathBuf> = env::var_os("LKRTC_VPX_LIB_DIR")
    .map(PathBuf::from)
    .into_iter()
    .collect();
  dirs.extend(lib.link_paths.iter().cloned());
  if let Ok(libdir) = pkg_config::get_variable("vpx", "libdir") {
    dirs.push(PathBuf::from(libdir));
  }
  dirs.extend(compiler_lib_dir("libvpx.a"));
  let Some(dir) = dirs.iter().find(|d| d.join("libvpx.a").is_file()) else {
    fail(&format!(
      "libvpx.a not found in {dirs:?} (install libvpx-dev, or set LKRTC_VPX_LIB_DIR)"
    ));
  };
  println!("cargo:rustc-link-search=native={}", dir.display());
  println!("cargo:rustc-link-lib=static=vpx");
  // libvpx's own dependencies (libm, libpthread) are part of glibc / linked by std already.

  let mut builder = bindgen::builder()
    .header("src/vpx_sys.h")
    .allowlist_function("vpx_.*")
    .allowlist_type("vpx_.*|vp8.*|VP8.*")
    .allowlist_var("VPX_.*|VP8_.*")
    // Plain integer constants: a value libvpx adds later can never be an invalid Rust enum.
    .default_enum_style(bindgen::EnumVariation::Consts)
    .prepend_enum_name(false)
    .layout_tests(false)
    .generate_comments(false);
  for path in &lib.include_paths {
    builder = builder.clang_arg(format!("-I{}", path.display()));
  }
  let bindings = match builder.generate() {
    Ok(b) => b,
    Err(e) => fail(&format!("bindgen failed on the libvpx headers: {e}")),
  };
  let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("vpx_sys.rs");
  if let Err(e) = bindings.write_to_file(&out) {
    fail(&format!("cannot write {}: {e}", out.display()));
  }
  println!("cargo:rustc-env=LKRTC_VPX_VERSION={}", lib.version);
  aom();
}

/// libaom (AV1), the same way: libaom.a from Debian's libaom-dev, linked statically, bindings
/// generated from its installed headers.
fn aom() {
  println!("cargo:rerun-if-changed=src/aom_sys.h");
  println!("cargo:rerun-if-env-changed=LKRTC_AOM_LIB_DIR");
  let lib = match pkg_config::Config::new()
    .cargo_metadata(false)
    .env_metadata(true)
    .probe("aom")
  {
    Ok(lib) => lib,
    Err(e) => fail(&format!("libaom not found by pkg-config (install libaom-dev): {e}")),
  };
  let mut dirs: Vec<PathBuf> = env::var_os("LKRTC_AOM_LIB_DIR")
    .map(PathBuf::from)
    .into_iter()
    .collect();
  dirs.extend(lib.link_paths.iter().cloned());
  if let Ok(libdir) = pkg_config::get_variable("aom", "libdir") {
    dirs.push(PathBuf::from(libdir));
  }
  dirs.extend(compiler_lib_dir("libaom.a"));
  let Some(dir) = dirs.iter().find(|d| d.join("libaom.a").is_file()) else {
    fail(&format!(
      "libaom.a not found in {dirs:?} (install libaom-dev, or set LKRTC_AOM_LIB_DIR)"
    ));
  };
  println!("cargo:rustc-link-search=native={}", dir.display());
  println!("cargo:rustc-link-lib=static=aom");

  let mut builder = bindgen::builder()
    .header("src/aom_sys.h")
    .allowlist_function("aom_.*")
    .allowlist_type("aom_.*|aome_.*|aomd_.*|av1d_.*|AOM.*|AV1.*")
    .allowlist_var("AOM_.*|AV1_.*|AOMD_.*|AV1D_.*|AOME_.*|AV1E_.*")
    .default_enum_style(bindgen::EnumVariation::Consts)
    .prepend_enum_name(false)
    .layout_tests(false)
    .generate_comments(false);
  for path in &lib.include_paths {
    builder = builder.clang_arg(format!("-I{}", path.display()));
  }
  let bindings = match builder.generate() {
    Ok(b) => b,
    Err(e) => fail(&format!("bindgen failed on the libaom headers: {e}")),
  };
  let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("aom_sys.rs");
  if let Err(e) = bindings.write_to_file(&out) {
    fail(&format!("cannot write {}: {e}", out.display()));
  }
}

/// The directory in which the C compiler would find `file`, if it finds it.
fn compiler_lib_dir(file: &str) -> Option<PathBuf> {
  let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
  let out = std::process::Command::new(cc)
    .arg(format!("-print-file-name={file}"))
    .output()
    .ok()?;
  let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
  // Not found: the compiler echoes the bare name back.
  if path.is_absolute() && path.is_file() {
    path.canonicalize().ok()?.parent().map(PathBuf::from)
  } else {
    None
  }
}

fn fail(msg: &str) -> ! {
  eprintln!("lkrtc-codec: {msg}");
  std::process::exit(1);
}
